/**
 * The one storage conformance suite (style.md principle 5): every backend's test file calls
 * {@link runStoreConformance}, and every edge semantic stated in `types.ts` is a case here. A
 * backend that passes it is interchangeable with the others.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  StoreConflictError,
  type ApiTokenRecord,
  type AuditEntry,
  type ChallengeRecord,
  type EnrollmentTokenRecord,
  type MdmProfileKind,
  type NewCertificate,
  type UserRecord,
  type WebSessionRecord,
  type RequestRecord,
  type Store,
} from './types.ts';

/** Every table a fully migrated database has, in either dialect (sorted). */
export const SCHEMA_TABLES: readonly string[] = [
  'api_tokens',
  'audit',
  'certificates',
  'challenge_failures',
  'challenges',
  'device_certificates',
  'device_commands',
  'device_profiles',
  'devices',
  'download_links',
  'enrollment_tokens',
  'key_escrow',
  'mdm_assignments',
  'mdm_profiles',
  'requests',
  'schema_migrations',
  'users',
  'web_sessions',
];

export interface ConformanceOptions {
  /**
   * Makes a database that outlives its stores and returns a function that opens a store on it
   * (the same database on every call). Omitted for targets whose data dies with the store
   * (SQLite `:memory:`): the reopen and cross-connection cases are then not registered at all.
   */
  readonly persistent?: () => Promise<() => Promise<Store>>;
}

/** Registers the suite under `describe(name)`. `open` gives a store on a fresh, empty database. */
export function runStoreConformance(
  name: string,
  open: () => Promise<Store>,
  options: ConformanceOptions = {},
): void {
  const { persistent } = options;

  describe(`store conformance: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('status', () => {
      it("answers the database's clock and a schema migrated to the newest version", async () => {
        const before = Date.now();
        const s = await store.status();
        const after = Date.now();
        // Same machine here: the database's clock reads between our two readings (±1 s).
        assert.ok(s.time.getTime() >= before - 1000 && s.time.getTime() <= after + 1000);
        assert.ok(s.latestSchemaVersion >= 7);
        assert.equal(s.schemaVersion, s.latestSchemaVersion);
        assert.equal(typeof (await store.transaction((tx) => tx.status())).schemaVersion, 'number');
      });
    });

    describe('certificates', () => {
      it('inserts and reads back by serial and by SHA-1, not revoked', async () => {
        const c = cert('0a1b');
        await store.insertCertificate(c);
        const expected = { ...c, revokedAt: null, revocationReason: null };
        assert.deepEqual(await store.getCertificate('0a1b'), expected);
        assert.deepEqual(await store.getCertificateBySha1(c.sha1), expected);
      });

      it('returns undefined for an unknown serial or SHA-1', async () => {
        await store.insertCertificate(cert('01'));
        assert.equal(await store.getCertificate('02'), undefined);
        assert.equal(await store.getCertificateBySha1('00'.repeat(20)), undefined);
      });

      it('refuses a duplicate serial with ERR_STORE_DUPLICATE_SERIAL and changes nothing', async () => {
        const first = cert('77', { subject: 'CN=first' });
        await store.insertCertificate(first);
        await rejectsConflict(
          store.insertCertificate(cert('77', { subject: 'CN=second', der: bytesOf('other') })),
          'ERR_STORE_DUPLICATE_SERIAL',
        );
        assert.deepEqual(await store.getCertificate('77'), {
          ...first,
          revokedAt: null,
          revocationReason: null,
        });
        assert.equal((await store.listCertificates()).length, 1);
      });

      it('refuses the same certificate (same SHA-1) under another serial', async () => {
        const first = cert('78');
        await store.insertCertificate(first);
        await rejectsConflict(
          store.insertCertificate({ ...first, serial: '79' }),
          'ERR_STORE_DUPLICATE_SERIAL',
        );
        assert.equal(await store.getCertificate('79'), undefined);
      });

      it('lists by issuedAt descending, then serial, up to limit', async () => {
        await store.insertCertificate(cert('03', { issuedAt: at(1000) }));
        await store.insertCertificate(cert('01', { issuedAt: at(3000) }));
        await store.insertCertificate(cert('0b', { issuedAt: at(2000) }));
        await store.insertCertificate(cert('0a', { issuedAt: at(2000) }));
        assert.deepEqual(serials(await store.listCertificates()), ['01', '0a', '0b', '03']);
        assert.deepEqual(serials(await store.listCertificates({ limit: 2 })), ['01', '0a']);
        assert.deepEqual(serials(await store.listCertificates({ limit: 0 })), []);
      });

      it('refuses a limit that is not a non-negative integer, on every backend alike', async () => {
        for (const limit of [-1, 1.5, Number.NaN]) {
          await assert.rejects(store.listCertificates({ limit }), RangeError);
          await assert.rejects(store.listAudit({ limit }), RangeError);
        }
      });

      it('lists at most 100 by default', async () => {
        await store.transaction(async (tx) => {
          for (let i = 0; i < 101; i++)
            await tx.insertCertificate(cert(i.toString(16).padStart(2, '0'), { issuedAt: at(i) }));
        });
        const list = await store.listCertificates();
        assert.equal(list.length, 100);
        assert.equal(list[0]!.serial, '64'); // newest (i = 100) first
        assert.equal(list[99]!.serial, '01'); // the oldest (i = 0) is the one left out
      });

      it('filters by exact subject and by revocation state', async () => {
        await store.insertCertificate(cert('01', { subject: 'CN=alice', issuedAt: at(1) }));
        await store.insertCertificate(cert('02', { subject: 'CN=bob', issuedAt: at(2) }));
        await store.insertCertificate(cert('03', { subject: 'CN=alice', issuedAt: at(3) }));
        await store.insertCertificate(cert('04', { subject: 'cn=alice', issuedAt: at(4) }));
        assert.equal(await store.revokeCertificate('03', 1, at(10)), true);
        assert.deepEqual(serials(await store.listCertificates({ subject: 'CN=alice' })), [
          '03',
          '01',
        ]);
        assert.deepEqual(serials(await store.listCertificates({ subject: 'CN=nobody' })), []);
        assert.deepEqual(serials(await store.listCertificates({ revoked: true })), ['03']);
        assert.deepEqual(serials(await store.listCertificates({ revoked: false })), [
          '04',
          '02',
          '01',
        ]);
        assert.deepEqual(
          serials(await store.listCertificates({ subject: 'CN=alice', revoked: false })),
          ['01'],
        );
      });

      it('revokes once: a second revocation returns false and keeps the first time and reason', async () => {
        await store.insertCertificate(cert('05'));
        assert.equal(await store.revokeCertificate('05', 1, at(100)), true);
        assert.equal(await store.revokeCertificate('05', 4, at(200)), false);
        const c = await store.getCertificate('05');
        assert.deepEqual([c?.revokedAt, c?.revocationReason], [at(100), 1]);
      });

      it('revoking an unknown serial returns false', async () => {
        assert.equal(await store.revokeCertificate('ff', 0, at(0)), false);
        assert.deepEqual(await store.listRevoked(at(0)), []);
      });

      it('keeps every RFC 5280 reason code', async () => {
        const reasons = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10] as const;
        for (const [i, reason] of reasons.entries()) {
          const serial = (0x10 + i).toString(16);
          await store.insertCertificate(cert(serial));
          assert.equal(await store.revokeCertificate(serial, reason, at(i)), true);
        }
        const listed = await store.listRevoked(at(0));
        assert.deepEqual(
          listed.map((r) => r.reason),
          [...reasons],
        );
      });

      it('listRevoked gives revoked certificates not expired before `at`, by serial', async () => {
        await store.insertCertificate(cert('0c', { notAfter: at(5000) }));
        await store.insertCertificate(cert('0a', { notAfter: at(4999) })); // expired before at(5000)
        await store.insertCertificate(cert('0b', { notAfter: at(9000) }));
        await store.insertCertificate(cert('0d', { notAfter: at(9000) })); // never revoked
        await store.revokeCertificate('0c', 1, at(10));
        await store.revokeCertificate('0a', 4, at(20));
        await store.revokeCertificate('0b', 5, at(30));
        assert.deepEqual(await store.listRevoked(at(5000)), [
          { serial: '0b', revokedAt: at(30), reason: 5 },
          { serial: '0c', revokedAt: at(10), reason: 1 },
        ]);
        assert.deepEqual(serials(await store.listRevoked(at(0))), ['0a', '0b', '0c']);
        assert.deepEqual(await store.listRevoked(at(9001)), []);
      });

      it('keeps alt names in order; finds by exact alt name, case-insensitively', async () => {
        const names = ['email:Ann@Contoso.com', 'upn:ann@contoso.com', 'dns:a%b_c.example'];
        await store.insertCertificate(cert('01', { altNames: names, issuedAt: at(1) }));
        await store.insertCertificate(
          cert('02', { altNames: ['email:bob@contoso.com'], issuedAt: at(2) }),
        );
        await store.insertCertificate(
          cert('03', { altNames: ['email:ann@contoso.com.evil'], issuedAt: at(3) }),
        );
        await store.insertCertificate(cert('04', { issuedAt: at(4) }));
        assert.deepEqual((await store.getCertificate('01'))?.altNames, names);
        assert.deepEqual((await store.getCertificate('04'))?.altNames, []);
        const by = async (altNames: string[]) =>
          serials(await store.listCertificates({ altNames }));
        assert.deepEqual(await by(['email:ann@contoso.com']), ['01'], 'whole names only');
        assert.deepEqual(await by(['EMAIL:BOB@CONTOSO.COM', 'upn:ann@contoso.com']), ['02', '01']);
        assert.deepEqual(await by(['dns:a%b_c.example']), ['01']);
        assert.deepEqual(await by(['dns:a%']), [], '% is a plain character');
        assert.deepEqual(await by([]), []);
      });

      it('refuses an alt name with a line break and stores nothing', async () => {
        await assert.rejects(
          store.insertCertificate(cert('01', { altNames: ['dns:a\nemail:x@y'] })),
          RangeError,
        );
        assert.equal(await store.getCertificate('01'), undefined);
      });

      it('searches subject, serial and alt names by substring, case-insensitively', async () => {
        await store.insertCertificate(
          cert('0abc', { subject: 'CN=Laptop-7,O=Contoso', issuedAt: at(1) }),
        );
        await store.insertCertificate(
          cert('0def', { altNames: ['dns:laptop-9.contoso.com'], issuedAt: at(2) }),
        );
        await store.insertCertificate(cert('77', { subject: 'CN=100%_sure', issuedAt: at(3) }));
        const find = async (search: string) => serials(await store.listCertificates({ search }));
        assert.deepEqual(await find('LAPTOP'), ['0def', '0abc']);
        assert.deepEqual(await find('0AB'), ['0abc']);
        assert.deepEqual(await find('contoso'), ['0def', '0abc']);
        assert.deepEqual(await find('%_'), ['77'], 'LIKE wildcards are plain characters');
        assert.deepEqual(await find('0%s'), [], 'no wildcard: "0%_s" is there, "0%s" is not');
        assert.deepEqual(await find('!'), []);
        assert.deepEqual(serials(await store.listCertificates({ search: '' })), [
          '77',
          '0def',
          '0abc',
        ]);
      });

      it('pages with offset and limit', async () => {
        for (let i = 0; i < 5; i++)
          await store.insertCertificate(cert(`0${i}`, { issuedAt: at(i) }));
        assert.deepEqual(serials(await store.listCertificates({ limit: 2 })), ['04', '03']);
        assert.deepEqual(serials(await store.listCertificates({ limit: 2, offset: 2 })), [
          '02',
          '01',
        ]);
        assert.deepEqual(serials(await store.listCertificates({ limit: 2, offset: 4 })), ['00']);
        assert.deepEqual(serials(await store.listCertificates({ offset: 9 })), []);
        await assert.rejects(store.listCertificates({ offset: -1 }), RangeError);
      });

      it('counts certificates per interval by issuedAt or notAfter, zeros included', async () => {
        const day = 86_400_000;
        await store.insertCertificate(cert('01', { issuedAt: at(0), notAfter: at(10 * day) }));
        await store.insertCertificate(
          cert('02', { issuedAt: at(day - 1), notAfter: at(10 * day) }),
        );
        await store.insertCertificate(
          cert('03', { issuedAt: at(2 * day), notAfter: at(17 * day) }),
        );
        await store.insertCertificate(cert('04', { issuedAt: at(3 * day), notAfter: at(3 * day) }));
        await store.insertCertificate(cert('05', { issuedAt: at(-1), notAfter: at(11 * day) }));
        assert.deepEqual(
          await store.countCertificatesByInterval({
            by: 'issuedAt',
            from: at(0),
            bucketMs: day,
            buckets: 3,
          }),
          [2, 0, 1],
          'the end of the last interval is excluded, and so is what came before `from`',
        );
        assert.deepEqual(
          await store.countCertificatesByInterval({
            by: 'notAfter',
            from: at(7 * day),
            bucketMs: 7 * day,
            buckets: 2,
          }),
          [3, 1],
        );
        await store.revokeCertificate('05', 1, at(5));
        assert.deepEqual(
          await store.countCertificatesByInterval({
            by: 'notAfter',
            from: at(7 * day),
            bucketMs: 7 * day,
            buckets: 2,
            revoked: false,
          }),
          [2, 1],
        );
        assert.deepEqual(
          await store.countCertificatesByInterval({
            by: 'issuedAt',
            from: at(0),
            bucketMs: 1,
            buckets: 1,
          }),
          [1],
        );
        await assert.rejects(
          store.countCertificatesByInterval({
            by: 'issuedAt',
            from: at(0),
            bucketMs: 0,
            buckets: 1,
          }),
          RangeError,
        );
      });
    });

    describe('challenges', () => {
      it('creates and reads back, unused, with and without a subject', async () => {
        const a = challenge('c1', { subject: 'CN=device-1' });
        const b = challenge('c2', { subject: null });
        await store.createChallenge(a);
        await store.createChallenge(b);
        assert.deepEqual(await store.getChallenge('c1'), { ...a, usedAt: null });
        assert.deepEqual(await store.getChallenge('c2'), { ...b, usedAt: null });
        assert.equal(await store.getChallenge('c3'), undefined);
      });

      it('refuses a duplicate id or secretHash with ERR_STORE_DUPLICATE_ID', async () => {
        const a = challenge('c1');
        await store.createChallenge(a);
        await rejectsConflict(
          store.createChallenge({ ...challenge('c1'), secretHash: sha256('other') }),
          'ERR_STORE_DUPLICATE_ID',
        );
        await rejectsConflict(
          store.createChallenge({ ...challenge('c9'), secretHash: a.secretHash }),
          'ERR_STORE_DUPLICATE_ID',
        );
        assert.equal(await store.getChallenge('c9'), undefined);
        assert.deepEqual(await store.getChallenge('c1'), { ...a, usedAt: null });
      });

      it('consumes once: the first call returns it used at `now`, the second undefined', async () => {
        const c = challenge('c1', { expiresAt: at(1000) });
        await store.createChallenge(c);
        assert.deepEqual(await store.consumeChallenge(c.secretHash, at(500)), {
          ...c,
          usedAt: at(500),
        });
        assert.equal(await store.consumeChallenge(c.secretHash, at(600)), undefined);
        assert.deepEqual((await store.getChallenge('c1'))?.usedAt, at(500));
      });

      it('does not consume an expired challenge (expiresAt <= now) and leaves it unused', async () => {
        const c = challenge('c1', { expiresAt: at(1000) });
        await store.createChallenge(c);
        assert.equal(await store.consumeChallenge(c.secretHash, at(1000)), undefined);
        assert.equal(await store.consumeChallenge(c.secretHash, at(5000)), undefined);
        assert.equal((await store.getChallenge('c1'))?.usedAt, null);
        assert.deepEqual((await store.consumeChallenge(c.secretHash, at(999)))?.usedAt, at(999));
      });

      it('finds a usable challenge without taking it: unused and unexpired only', async () => {
        const c = challenge('c1', { expiresAt: at(1000) });
        await store.createChallenge(c);
        assert.deepEqual(await store.findUsableChallenge(c.secretHash, at(500)), {
          ...c,
          usedAt: null,
        });
        assert.equal(await store.findUsableChallenge(c.secretHash, at(1000)), undefined);
        assert.equal(await store.findUsableChallenge(sha256('unknown'), at(0)), undefined);
        assert.equal((await store.getChallenge('c1'))?.usedAt, null, 'finding takes nothing');
        assert.ok(await store.consumeChallenge(c.secretHash, at(600)));
        assert.equal(await store.findUsableChallenge(c.secretHash, at(700)), undefined);
      });

      it('returns undefined for an unknown secret', async () => {
        await store.createChallenge(challenge('c1'));
        assert.equal(await store.consumeChallenge(sha256('unknown'), at(0)), undefined);
        assert.equal((await store.getChallenge('c1'))?.usedAt, null);
      });

      it('10 concurrent consumes of one challenge: exactly one wins', async () => {
        const c = challenge('c1');
        await store.createChallenge(c);
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.consumeChallenge(c.secretHash, at(100 + i))),
        );
        const winners = results.filter((r) => r !== undefined);
        assert.equal(winners.length, 1);
        assert.deepEqual((await store.getChallenge('c1'))?.usedAt, winners[0]!.usedAt);
      });

      it('purges challenges that expired before `before`, used or not, and counts them', async () => {
        await store.createChallenge(challenge('old', { expiresAt: at(100) }));
        await store.createChallenge(challenge('used', { expiresAt: at(200) }));
        await store.createChallenge(challenge('edge', { expiresAt: at(300) }));
        await store.createChallenge(challenge('new', { expiresAt: at(400) }));
        assert.ok(await store.consumeChallenge(sha256('used'), at(150)));
        assert.equal(await store.purgeExpiredChallenges(at(300)), 2);
        assert.equal(await store.getChallenge('old'), undefined);
        assert.equal(await store.getChallenge('used'), undefined);
        assert.ok(await store.getChallenge('edge'));
        assert.ok(await store.getChallenge('new'));
        assert.equal(await store.purgeExpiredChallenges(at(300)), 0);
      });
    });

    describe('requests', () => {
      it('creates a pending request and reads it back by id and by transactionId', async () => {
        const r = newRequest('r1', 'tx-1', { signerCertificate: bytesOf('signer') });
        await store.createRequest(r);
        const expected: RequestRecord = {
          ...r,
          status: 'pending',
          decidedAt: null,
          decidedBy: null,
          certificateSerial: null,
        };
        assert.deepEqual(await store.getRequest('r1'), expected);
        assert.deepEqual(await store.getRequestByTransaction('tx-1'), expected);
        assert.equal(await store.getRequest('r2'), undefined);
        assert.equal(await store.getRequestByTransaction('tx-2'), undefined);
      });

      it('refuses a duplicate transactionId with ERR_STORE_DUPLICATE_TRANSACTION and changes nothing', async () => {
        await store.createRequest(newRequest('r1', 'tx-1', { subject: 'CN=first' }));
        await rejectsConflict(
          store.createRequest(newRequest('r2', 'tx-1', { subject: 'CN=second' })),
          'ERR_STORE_DUPLICATE_TRANSACTION',
        );
        assert.equal(await store.getRequest('r2'), undefined);
        assert.equal((await store.getRequestByTransaction('tx-1'))?.subject, 'CN=first');
      });

      it('refuses a duplicate id with ERR_STORE_DUPLICATE_ID', async () => {
        await store.createRequest(newRequest('r1', 'tx-1'));
        await rejectsConflict(
          store.createRequest(newRequest('r1', 'tx-2')),
          'ERR_STORE_DUPLICATE_ID',
        );
        assert.equal(await store.getRequestByTransaction('tx-2'), undefined);
      });

      it('decides only a pending request; later decisions return false and change nothing', async () => {
        await store.createRequest(newRequest('r1', 'tx-1'));
        await store.createRequest(newRequest('r2', 'tx-2'));
        assert.equal(await store.decideRequest('r1', 'approved', 'admin:ann', at(10)), true);
        assert.equal(await store.decideRequest('r1', 'rejected', 'admin:bob', at(20)), false);
        assert.equal(await store.decideRequest('r2', 'rejected', 'admin:bob', at(30)), true);
        assert.equal(await store.decideRequest('r2', 'approved', 'admin:ann', at(40)), false);
        assert.equal(await store.decideRequest('nope', 'approved', 'admin:ann', at(40)), false);
        const r1 = await store.getRequest('r1');
        assert.deepEqual(
          [r1?.status, r1?.decidedBy, r1?.decidedAt],
          ['approved', 'admin:ann', at(10)],
        );
        const r2 = await store.getRequest('r2');
        assert.deepEqual(
          [r2?.status, r2?.decidedBy, r2?.decidedAt],
          ['rejected', 'admin:bob', at(30)],
        );
      });

      it('marks issued only from approved', async () => {
        await store.createRequest(newRequest('pending', 'tx-1'));
        await store.createRequest(newRequest('approved', 'tx-2'));
        await store.createRequest(newRequest('rejected', 'tx-3'));
        await store.decideRequest('approved', 'approved', 'cli', at(1));
        await store.decideRequest('rejected', 'rejected', 'cli', at(1));
        assert.equal(await store.markIssued('pending', 'aa'), false);
        assert.equal(await store.markIssued('rejected', 'aa'), false);
        assert.equal(await store.markIssued('nope', 'aa'), false);
        assert.equal(await store.markIssued('approved', 'aa'), true);
        assert.equal(await store.markIssued('approved', 'bb'), false);
        const r = await store.getRequest('approved');
        assert.deepEqual([r?.status, r?.certificateSerial, r?.decidedBy], ['issued', 'aa', 'cli']);
        assert.equal((await store.getRequest('pending'))?.status, 'pending');
        assert.equal((await store.getRequest('pending'))?.certificateSerial, null);
        assert.equal((await store.getRequest('rejected'))?.status, 'rejected');
      });

      it('lists by status, oldest first (ties by id); all when no status is given', async () => {
        await store.createRequest(newRequest('b', 'tx-b', { createdAt: at(20) }));
        await store.createRequest(newRequest('c', 'tx-c', { createdAt: at(10) }));
        await store.createRequest(newRequest('a', 'tx-a', { createdAt: at(20) }));
        await store.createRequest(newRequest('d', 'tx-d', { createdAt: at(5) }));
        await store.decideRequest('d', 'approved', 'cli', at(30));
        assert.deepEqual(ids(await store.listRequests()), ['d', 'c', 'a', 'b']);
        assert.deepEqual(ids(await store.listRequests('pending')), ['c', 'a', 'b']);
        assert.deepEqual(ids(await store.listRequests('approved')), ['d']);
        assert.deepEqual(ids(await store.listRequests('issued')), []);
      });
    });

    describe('audit', () => {
      it('appends and lists newest first with increasing ids; details round-trip', async () => {
        const details = {
          serial: '0a',
          n: 42,
          ratio: 0.5,
          ok: true,
          none: null,
          list: [1, 'two', { three: 3 }],
          nested: { text: 'é ü 漢字 🙂', quote: `"'\\` },
        };
        await store.appendAudit(entry(at(1), 'certificate.issued', { serial: '01' }));
        await store.appendAudit(entry(at(2), 'certificate.revoked', details));
        await store.appendAudit(entry(at(3), 'request.rejected', {}));
        const list = await store.listAudit();
        assert.deepEqual(
          list.map((e) => e.action),
          ['request.rejected', 'certificate.revoked', 'certificate.issued'],
        );
        const [third, second, first] = list;
        assert.ok(first!.id < second!.id && second!.id < third!.id);
        assert.ok(Number.isSafeInteger(first!.id));
        assert.deepEqual(second, {
          id: second!.id,
          ...entry(at(2), 'certificate.revoked', details),
        });
        assert.deepEqual(third!.details, {});
      });

      it('filters by action and honours limit (default 100)', async () => {
        await store.transaction(async (tx) => {
          for (let i = 0; i < 105; i++)
            await tx.appendAudit(entry(at(i), i % 2 === 0 ? 'even' : 'odd', { i }));
        });
        assert.equal((await store.listAudit()).length, 100);
        assert.deepEqual(
          (await store.listAudit({ limit: 3 })).map((e) => e.details['i']),
          [104, 103, 102],
        );
        const odd = await store.listAudit({ action: 'odd', limit: 2 });
        assert.deepEqual(
          odd.map((e) => [e.action, e.details['i']]),
          [
            ['odd', 103],
            ['odd', 101],
          ],
        );
        assert.equal((await store.listAudit({ action: 'even' })).length, 53);
        assert.deepEqual(await store.listAudit({ action: 'none' }), []);
      });

      it('pages with offset, newest first', async () => {
        for (let i = 0; i < 5; i++) await store.appendAudit(entry(at(i), 'x', { i }));
        const pages = [];
        for (const offset of [0, 2, 4, 5])
          pages.push((await store.listAudit({ limit: 2, offset })).map((e) => e.details['i']));
        assert.deepEqual(pages, [[4, 3], [2, 1], [0], []]);
      });
    });

    describe('API tokens', () => {
      it('creates and finds by hash while usable; unknown hashes find nothing', async () => {
        const forever = apiToken('t1', { expiresAt: null });
        const dated = apiToken('t2', { expiresAt: at(1000) });
        await store.createApiToken(forever);
        await store.createApiToken(dated);
        assert.deepEqual(await store.findApiToken(forever.secretHash, at(0)), {
          ...forever,
          revokedAt: null,
        });
        assert.deepEqual(await store.findApiToken(dated.secretHash, at(999)), {
          ...dated,
          revokedAt: null,
        });
        assert.ok(await store.findApiToken(forever.secretHash, new Date('9999-12-31T00:00:00Z')));
        assert.equal(await store.findApiToken(sha256('unknown'), at(0)), undefined);
      });

      it('does not find an expired token (expiresAt <= now)', async () => {
        const t = apiToken('t1', { expiresAt: at(1000) });
        await store.createApiToken(t);
        assert.equal(await store.findApiToken(t.secretHash, at(1000)), undefined);
        assert.equal(await store.findApiToken(t.secretHash, at(5000)), undefined);
        assert.ok(await store.findApiToken(t.secretHash, at(999)), 'expiry alone changes nothing');
      });

      it('revokes once: then it is not found, a second revocation returns false, the first time stays', async () => {
        const t = apiToken('t1');
        await store.createApiToken(t);
        assert.equal(await store.revokeApiToken('t1', at(10)), true);
        assert.equal(await store.findApiToken(t.secretHash, at(11)), undefined);
        assert.equal(await store.revokeApiToken('t1', at(20)), false);
        assert.deepEqual(await store.listApiTokens(), [{ ...t, revokedAt: at(10) }]);
        assert.equal(await store.revokeApiToken('nope', at(20)), false);
      });

      it('revokes an expired token too', async () => {
        await store.createApiToken(apiToken('t1', { expiresAt: at(5) }));
        assert.equal(await store.revokeApiToken('t1', at(10)), true);
        assert.deepEqual((await store.listApiTokens())[0]?.revokedAt, at(10));
      });

      it('refuses a duplicate id or hash (ERR_STORE_DUPLICATE_ID) and name (ERR_STORE_DUPLICATE_NAME)', async () => {
        const t = apiToken('t1');
        await store.createApiToken(t);
        await rejectsConflict(
          store.createApiToken({ ...apiToken('t1'), name: 'other', secretHash: sha256('x') }),
          'ERR_STORE_DUPLICATE_ID',
        );
        await rejectsConflict(
          store.createApiToken({ ...apiToken('t2'), secretHash: t.secretHash }),
          'ERR_STORE_DUPLICATE_ID',
        );
        await rejectsConflict(
          store.createApiToken({ ...apiToken('t3'), name: t.name }),
          'ERR_STORE_DUPLICATE_NAME',
        );
        await store.revokeApiToken('t1', at(1));
        await rejectsConflict(
          store.createApiToken({ ...apiToken('t4'), name: t.name }),
          'ERR_STORE_DUPLICATE_NAME',
        );
        assert.deepEqual(await store.listApiTokens(), [{ ...t, revokedAt: at(1) }]);
      });

      it('lists every token, revoked and expired included, by createdAt then id', async () => {
        await store.createApiToken(apiToken('b', { createdAt: at(20) }));
        await store.createApiToken(apiToken('c', { createdAt: at(10), expiresAt: at(11) }));
        await store.createApiToken(apiToken('a', { createdAt: at(20) }));
        await store.revokeApiToken('a', at(30));
        assert.deepEqual(
          (await store.listApiTokens()).map((t) => t.id),
          ['c', 'a', 'b'],
        );
      });

      it('a token created in a transaction that rolls back does not exist', async () => {
        const t = apiToken('t1');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.createApiToken(t);
            assert.ok(await tx.findApiToken(t.secretHash, at(0)));
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal(await store.findApiToken(t.secretHash, at(0)), undefined);
        assert.deepEqual(await store.listApiTokens(), []);
      });
    });

    describe('challenge failures', () => {
      it('counts failures per key from a point in time, 0 for an unknown key', async () => {
        const t0 = new Date('2026-03-01T00:00:00.000Z');
        await store.recordFailure('198.51.100.1', t0);
        await store.recordFailure('198.51.100.1', new Date(t0.getTime() + 30_000));
        await store.recordFailure('198.51.100.2', new Date(t0.getTime() + 30_000));
        assert.equal(await store.countFailures('198.51.100.1', t0), 2, 'since is inclusive');
        assert.equal(await store.countFailures('198.51.100.1', new Date(t0.getTime() + 1)), 1);
        assert.equal(await store.countFailures('198.51.100.2', t0), 1);
        assert.equal(await store.countFailures('203.0.113.9', t0), 0);
      });

      it('purges failures before a time and says how many', async () => {
        const t0 = new Date('2026-03-01T00:00:00.000Z');
        for (let i = 0; i < 3; i++)
          await store.recordFailure('k', new Date(t0.getTime() + i * 1000));
        assert.equal(await store.purgeFailures(new Date(t0.getTime() + 2000)), 2);
        assert.equal(await store.countFailures('k', t0), 1);
        assert.equal(await store.purgeFailures(t0), 0);
      });

      it('purges only the keys under a prefix when one is given', async () => {
        const t0 = new Date('2026-03-01T00:00:00.000Z');
        for (const key of ['signin:ip:a', 'signin:user:b', 'Signin:x', '198.51.100.1'])
          await store.recordFailure(key, t0);
        assert.equal(await store.purgeFailures(new Date(t0.getTime() + 1), 'signin:'), 2);
        assert.equal(await store.countFailures('Signin:x', t0), 1, 'the prefix is case-sensitive');
        assert.equal(await store.countFailures('198.51.100.1', t0), 1);
        assert.equal(await store.countFailures('signin:ip:a', t0), 0);
      });
    });

    describe('enrollment tokens', () => {
      it('spends one use at a time until none is left, then finds nothing', async () => {
        const t = enrollmentToken('e1', { usesLeft: 2 });
        await store.createEnrollmentToken(t);
        assert.deepEqual(
          await store.findEnrollmentToken(t.secretHash, at(1)),
          t,
          'finding spends nothing',
        );
        assert.deepEqual(await store.useEnrollmentToken(t.secretHash, at(1)), {
          ...t,
          usesLeft: 1,
        });
        assert.equal((await store.useEnrollmentToken(t.secretHash, at(2)))?.usesLeft, 0);
        assert.equal(await store.useEnrollmentToken(t.secretHash, at(3)), undefined);
        assert.equal(await store.findEnrollmentToken(t.secretHash, at(3)), undefined, 'used up');
        assert.equal(await store.useEnrollmentToken(sha256('unknown'), at(3)), undefined);
      });

      it('an expired token (expiresAt <= now) is not spent', async () => {
        const t = enrollmentToken('e1', { expiresAt: at(1000) });
        await store.createEnrollmentToken(t);
        assert.equal(await store.useEnrollmentToken(t.secretHash, at(1000)), undefined);
        assert.equal(await store.findEnrollmentToken(t.secretHash, at(1000)), undefined);
        assert.deepEqual(await store.listEnrollmentTokens(), [t], 'nothing changed');
      });

      it('n concurrent enrollments with an n-use token: exactly n succeed', async () => {
        const t = enrollmentToken('e1', { usesLeft: 3 });
        await store.createEnrollmentToken(t);
        const got = await Promise.all(
          Array.from({ length: 8 }, () => store.useEnrollmentToken(t.secretHash, at(1))),
        );
        assert.equal(got.filter(Boolean).length, 3);
        assert.deepEqual(
          got
            .filter(Boolean)
            .map((r) => r!.usesLeft)
            .toSorted(),
          [0, 1, 2],
        );
      });

      it('revokes (no use left); unknown ids and duplicates are told', async () => {
        const t = enrollmentToken('e1', { user: 'ann@example.com' });
        await store.createEnrollmentToken(t);
        await rejectsConflict(
          store.createEnrollmentToken({ ...t, secretHash: sha256('other') }),
          'ERR_STORE_DUPLICATE_ID',
        );
        await rejectsConflict(
          store.createEnrollmentToken({ ...enrollmentToken('e2'), secretHash: t.secretHash }),
          'ERR_STORE_DUPLICATE_ID',
        );
        assert.equal(await store.revokeEnrollmentToken('e1'), true);
        assert.equal(await store.revokeEnrollmentToken('nope'), false);
        assert.equal(await store.useEnrollmentToken(t.secretHash, at(1)), undefined);
        assert.deepEqual(await store.listEnrollmentTokens(), [{ ...t, usesLeft: 0 }]);
      });
    });

    describe('devices', () => {
      it('creates, reads back, lists by enrolledAt then id; refuses a duplicate id', async () => {
        const b = newDevice('b', { enrolledAt: at(5) });
        const a = newDevice('a', { enrolledAt: at(5), user: 'ann@example.com' });
        const c = newDevice('c', { enrolledAt: at(1) });
        for (const d of [b, a, c]) await store.createDevice(d);
        assert.deepEqual(await store.getDevice('a'), {
          ...a,
          lastSeenAt: null,
          unenrolledAt: null,
        });
        assert.equal(await store.getDevice('zz'), undefined);
        assert.deepEqual(ids(await store.listDevices()), ['c', 'a', 'b']);
        assert.deepEqual(ids(await store.listDevices({ limit: 1 })), ['c']);
        assert.deepEqual(ids(await store.listDevices({ user: 'ANN@example.com' })), ['a']);
        await store.unenrollDevice('c', at(9));
        assert.deepEqual(ids(await store.listDevices({ enrolled: true })), ['a', 'b']);
        await rejectsConflict(store.createDevice(newDevice('a')), 'ERR_STORE_DUPLICATE_ID');
      });

      it('touch records the time and merges info in the database; unknown devices are told', async () => {
        await store.createDevice(newDevice('d1', { info: { Man: 'Contoso', Lang: 'en-US' } }));
        assert.equal(await store.touchDevice('d1', at(10)), true);
        assert.equal(await store.touchDevice('d1', at(20), { Lang: 'de-DE', Mod: 'X1' }), true);
        const d = await store.getDevice('d1');
        assert.deepEqual(d?.lastSeenAt, at(20));
        assert.deepEqual(d?.info, { Man: 'Contoso', Lang: 'de-DE', Mod: 'X1' });
        // The database merges: two touches at once each keep their keys.
        await Promise.all([
          store.touchDevice('d1', at(30), { A: 'a' }),
          store.touchDevice('d1', at(30), { B: 'b"\\' }),
        ]);
        assert.deepEqual((await store.getDevice('d1'))?.info, {
          Man: 'Contoso',
          Lang: 'de-DE',
          Mod: 'X1',
          A: 'a',
          B: 'b"\\',
        });
        assert.equal(await store.touchDevice('nope', at(20)), false);
        assert.equal(await store.touchDevice('nope', at(20), { a: 'b' }), false);
      });

      it('finds the enrolled device of a hardware id, the latest first; rotates its nonce compare-and-set', async () => {
        const auth = { hash: 'aGFzaA==', nonce: 'bjE=' };
        await store.createDevice(newDevice('old', { hardwareId: 'HW', enrolledAt: at(1), auth }));
        await store.createDevice(newDevice('new', { hardwareId: 'HW', enrolledAt: at(2), auth }));
        await store.createDevice(newDevice('gone', { hardwareId: 'HW', enrolledAt: at(3) }));
        await store.unenrollDevice('gone', at(4));
        assert.equal((await store.getDeviceByHardwareId('HW'))?.id, 'new');
        assert.equal(await store.getDeviceByHardwareId('nope'), undefined);
        assert.deepEqual((await store.getDevice('new'))?.auth, auth);
        assert.equal(await store.rotateDeviceNonce('new', 'bjE=', 'bjI='), true);
        assert.equal(await store.rotateDeviceNonce('new', 'bjE=', 'bjM='), false, 'stale nonce');
        assert.deepEqual((await store.getDevice('new'))?.auth, { ...auth, nonce: 'bjI=' });
        assert.equal((await store.getDevice('gone'))?.auth, null);
      });

      it('replaces the MDM certificate serial compare-and-set, not for an unenrolled device', async () => {
        await store.createDevice(newDevice('d1', { certificateSerial: '01' }));
        assert.equal(await store.replaceDeviceCertificate('d1', '01', '02'), true);
        assert.equal(await store.replaceDeviceCertificate('d1', '01', '03'), false, 'stale');
        assert.equal((await store.getDevice('d1'))?.certificateSerial, '02');
        await store.unenrollDevice('d1', at(1));
        assert.equal(await store.replaceDeviceCertificate('d1', '02', '04'), false);
        assert.equal(await store.replaceDeviceCertificate('zz', '02', '04'), false);
      });

      it('unenrolls once; the first time is kept', async () => {
        await store.createDevice(newDevice('d1'));
        assert.equal(await store.unenrollDevice('d1', at(10)), true);
        assert.equal(await store.unenrollDevice('d1', at(20)), false);
        assert.deepEqual((await store.getDevice('d1'))?.unenrolledAt, at(10));
        assert.equal(await store.unenrollDevice('nope', at(20)), false);
      });
    });

    describe('device commands', () => {
      beforeEach(async () => {
        await store.createDevice(newDevice('d1'));
        await store.createDevice(newDevice('d2'));
      });

      it('keeps queue order; open commands stay open when sent, until completed', async () => {
        await store.enqueueCommands([command('c1', 'd1'), command('c2', 'd1')]);
        await store.enqueueCommands([command('c0', 'd1'), command('x1', 'd2')]);
        assert.deepEqual(ids(await store.openCommands('d1')), ['c1', 'c2', 'c0']);
        assert.deepEqual(ids(await store.openCommands('d1', 2)), ['c1', 'c2']);
        await store.markCommandsSent('d1', ['c1', 'c2'], { at: at(10), session: '1' });
        await store.markCommandsSent('d1', ['c1'], { at: at(20), session: '2' });
        const queued = await store.openCommands('d1');
        assert.deepEqual(
          queued.map((c) => [c.id, c.sentCount, c.sentAt, c.sentSession]),
          [
            ['c1', 2, at(20), '2'],
            ['c2', 1, at(10), '1'],
            ['c0', 0, null, null],
          ],
        );
        assert.equal(
          await store.completeCommands('d1', [{ id: 'c1', status: 200, results: '[]' }], at(30)),
          1,
        );
        assert.deepEqual(ids(await store.openCommands('d1')), ['c2', 'c0']);
        const [done] = (await store.listCommands('d1')).filter((c) => c.id === 'c1');
        assert.deepEqual(done, {
          ...command('c1', 'd1'),
          sentAt: at(20),
          sentSession: '2',
          sentCount: 2,
          status: 200,
          results: '[]',
          completedAt: at(30),
        });
        assert.deepEqual(ids(await store.listCommands('d1')), ['c0', 'c2', 'c1']);
      });

      it('a device never completes or marks another device`s command; a completed one stays', async () => {
        await store.enqueueCommands([command('x1', 'd2')]);
        await store.markCommandsSent('d1', ['x1'], { at: at(1), session: '1' });
        assert.equal(
          await store.completeCommands('d1', [{ id: 'x1', status: 200, results: null }], at(2)),
          0,
        );
        const [x1] = await store.openCommands('d2');
        assert.equal(x1?.sentCount, 0);
        assert.equal(
          await store.completeCommands('d2', [{ id: 'x1', status: 404, results: null }], at(3)),
          1,
        );
        assert.equal(
          await store.completeCommands('d2', [{ id: 'x1', status: 200, results: null }], at(4)),
          0,
          'the first status is kept',
        );
        assert.equal((await store.listCommands('d2'))[0]?.status, 404);
      });

      it('completes several commands at once, each with its own outcome, only its own', async () => {
        await store.enqueueCommands([
          command('c1', 'd1'),
          command('c2', 'd1'),
          command('c3', 'd1'),
        ]);
        await store.enqueueCommands([command('x1', 'd2')]);
        assert.equal(
          await store.completeCommands(
            'd1',
            [
              { id: 'c1', status: 200, results: '{"a":1}' },
              { id: 'x1', status: 500, results: 'other' },
              { id: 'c3', status: 418, results: null },
            ],
            at(5),
          ),
          2,
        );
        assert.equal(await store.completeCommands('d1', [], at(6)), 0);
        const done = new Map((await store.listCommands('d1')).map((c) => [c.id, c]));
        assert.deepEqual(
          ['c1', 'c2', 'c3'].map((id) => [done.get(id)?.status, done.get(id)?.results]),
          [
            [200, '{"a":1}'],
            [null, null],
            [418, null],
          ],
        );
        assert.deepEqual(done.get('c3')?.completedAt, at(5));
        assert.deepEqual(ids(await store.openCommands('d1')), ['c2']);
        assert.deepEqual(ids(await store.openCommands('d2')), ['x1']);
      });

      it('a batch with a duplicate id queues nothing', async () => {
        await store.enqueueCommands([command('c1', 'd1')]);
        await rejectsConflict(
          store.enqueueCommands([command('c2', 'd1'), command('c1', 'd1')]),
          'ERR_STORE_DUPLICATE_ID',
        );
        assert.deepEqual(ids(await store.openCommands('d1')), ['c1']);
      });
    });

    describe('MDM profiles, assignments and deliveries', () => {
      it('creates, finds by id and name, lists by name, updates settings; duplicates are told', async () => {
        await store.createMdmProfile(mdmProfile('p2', 'wifi', 'scep'));
        await store.createMdmProfile(mdmProfile('p1', 'roots'));
        assert.deepEqual(await store.getMdmProfile('p2'), mdmProfile('p2', 'wifi', 'scep'));
        assert.deepEqual(await store.getMdmProfileByName('roots'), mdmProfile('p1', 'roots'));
        assert.equal(await store.getMdmProfile('zz'), undefined);
        assert.deepEqual(ids(await store.listMdmProfiles()), ['p1', 'p2']);
        assert.equal(await store.updateMdmProfile('p1', '{"x":1}', at(5)), true);
        assert.deepEqual(await store.getMdmProfile('p1'), {
          ...mdmProfile('p1', 'roots'),
          settings: '{"x":1}',
          updatedAt: at(5),
        });
        assert.equal(await store.updateMdmProfile('zz', '{}', at(5)), false);
        await rejectsConflict(
          store.createMdmProfile(mdmProfile('p1', 'other')),
          'ERR_STORE_DUPLICATE_ID',
        );
        await rejectsConflict(
          store.createMdmProfile(mdmProfile('p3', 'wifi')),
          'ERR_STORE_DUPLICATE_NAME',
        );
      });

      it('assigns to a device, a user or all; profilesForDevice finds each once', async () => {
        await store.createDevice(newDevice('d1', { user: 'ann@example.com' }));
        await store.createDevice(newDevice('d2'));
        for (const [id, title] of [
          ['p1', 'a-roots'],
          ['p2', 'b-wifi'],
          ['p3', 'c-vpn'],
          ['p4', 'd-unused'],
        ] as const)
          await store.createMdmProfile(mdmProfile(id, title));
        const assign = (profileId: string, targetKind: 'device' | 'user' | 'all', target: string) =>
          store.assignMdmProfile({ profileId, targetKind, target, createdAt: at(1) });
        assert.equal(await assign('p1', 'all', ''), true);
        assert.equal(await assign('p2', 'user', 'ann@example.com'), true);
        assert.equal(await assign('p2', 'device', 'd1'), true);
        assert.equal(await assign('p3', 'device', 'd2'), true);
        assert.equal(await assign('p3', 'device', 'd2'), false, 'already assigned');
        assert.deepEqual(ids(await store.profilesForDevice('d1', 'Ann@Example.com')), ['p1', 'p2']);
        assert.deepEqual(ids(await store.profilesForDevice('d2', null)), ['p1', 'p3']);
        assert.equal((await store.listAssignments('p2')).length, 2);
        assert.equal((await store.listAssignments()).length, 4);
        assert.equal(
          await store.unassignMdmProfile({ profileId: 'p2', targetKind: 'device', target: 'd1' }),
          true,
        );
        assert.equal(
          await store.unassignMdmProfile({ profileId: 'p2', targetKind: 'device', target: 'd1' }),
          false,
        );
        assert.deepEqual(ids(await store.profilesForDevice('d1', 'ann@example.com')), ['p1', 'p2']);
        assert.deepEqual(ids(await store.profilesForDevice('d1', null)), ['p1']);
      });

      it('puts deliveries (insert, then replace) per device and profile', async () => {
        await store.createDevice(newDevice('d1'));
        await store.createMdmProfile(mdmProfile('p1', 'roots'));
        await store.createMdmProfile(mdmProfile('p2', 'wifi'));
        const d = {
          deviceId: 'd1',
          profileId: 'p2',
          state: 'queued' as const,
          detail: '{"install":"c1"}',
          updatedAt: at(1),
        };
        await store.putDelivery(d);
        await store.putDelivery({ ...d, profileId: 'p1' });
        await store.putDelivery({ ...d, state: 'installed', detail: '{}', updatedAt: at(2) });
        assert.deepEqual(await store.listDeliveries('d1'), [
          { ...d, profileId: 'p1' },
          { ...d, state: 'installed', detail: '{}', updatedAt: at(2) },
        ]);
        assert.deepEqual(await store.listDeliveries('d2'), []);
      });
    });

    describe('device inventory', () => {
      it('replaces what is below a prefix only, matched exactly (case and wildcards included)', async () => {
        await store.createDevice(newDevice('d1'));
        await store.createDevice(newDevice('d2'));
        const root = './Device/Vendor/MSFT/RootCATrustedCertificates/Root/';
        const ca = './Device/Vendor/MSFT/RootCATrustedCertificates/CA/';
        await store.replaceInventory('d1', root, [
          held(`${root}AA`, 'AA'),
          held(`${root}BB`, 'BB'),
        ]);
        await store.replaceInventory('d1', ca, [held(`${ca}CC`, 'CC')]);
        await store.replaceInventory('d2', root, [held(`${root}AA`, 'AA')]);
        await store.replaceInventory('d1', root.toLowerCase(), []);
        await store.replaceInventory(
          'd1',
          './Device/Vendor/MSFT/RootCATrustedCertificates/R_ot/',
          [],
        );
        assert.deepEqual(
          (await store.listInventory('d1')).map((r) => r.thumbprint),
          ['CC', 'AA', 'BB'],
        );
        await store.replaceInventory('d1', root, [held(`${root}BB`, 'BB')]);
        const d1 = await store.listInventory('d1');
        assert.deepEqual(
          d1.map((r) => r.uri),
          [`${ca}CC`, `${root}BB`],
        );
        assert.deepEqual(d1[1], { deviceId: 'd1', ...held(`${root}BB`, 'BB') });
        assert.equal((await store.listInventory('d2')).length, 1, 'another device is untouched');
      });
    });

    describe('key escrow', () => {
      it('keeps one escrowed key per serial and gives it back byte for byte', async () => {
        const e = {
          serial: '0abc',
          pfx: bytesOf('pfx'),
          passwordEnvelope: bytesOf('envelope'),
          createdAt: at(3),
        };
        await store.escrowKey(e);
        assert.deepEqual(await store.getEscrow('0abc'), e);
        assert.equal(await store.getEscrow('0abd'), undefined);
        await rejectsConflict(
          store.escrowKey({ ...e, pfx: bytesOf('other') }),
          'ERR_STORE_DUPLICATE_SERIAL',
        );
        assert.deepEqual((await store.getEscrow('0abc'))?.pfx, e.pfx);
      });
    });

    describe('users', () => {
      it('creates, reads by id and by name, lists by username', async () => {
        const b = newUser('u2', 'bob@contoso.com');
        const a = newUser('u1', 'ann@contoso.com', { email: null, role: 'admin' });
        await store.createUser(b);
        await store.createUser(a);
        assert.deepEqual(await store.getUser('u1'), { ...a, disabledAt: null });
        assert.deepEqual(await store.getUserByName('bob@contoso.com'), { ...b, disabledAt: null });
        assert.equal(await store.getUserByName('Bob@contoso.com'), undefined, 'names are exact');
        assert.equal(await store.getUser('u3'), undefined);
        assert.deepEqual(
          (await store.listUsers()).map((u) => u.username),
          ['ann@contoso.com', 'bob@contoso.com'],
        );
      });

      it('refuses a duplicate id or username and changes nothing', async () => {
        await store.createUser(newUser('u1', 'ann'));
        await rejectsConflict(store.createUser(newUser('u1', 'other')), 'ERR_STORE_DUPLICATE_ID');
        await rejectsConflict(
          store.createUser(newUser('u2', 'ann', { displayName: 'Impostor' })),
          'ERR_STORE_DUPLICATE_NAME',
        );
        assert.equal((await store.listUsers()).length, 1);
        assert.equal((await store.getUser('u1'))?.displayName, 'User ann');
      });

      it('updates only the fields given, disables and enables; unknown ids return false', async () => {
        const u = newUser('u1', 'ann');
        await store.createUser(u);
        assert.equal(await store.updateUser('u1', { passwordHash: 'scrypt$new' }, at(5)), true);
        assert.deepEqual(await store.getUser('u1'), {
          ...u,
          passwordHash: 'scrypt$new',
          updatedAt: at(5),
          disabledAt: null,
        });
        assert.equal(
          await store.updateUser('u1', { disabledAt: at(6), role: 'admin' }, at(6)),
          true,
        );
        const disabled = await store.getUser('u1');
        assert.deepEqual([disabled?.disabledAt, disabled?.role], [at(6), 'admin']);
        assert.equal(await store.updateUser('u1', { disabledAt: null, email: null }, at(7)), true);
        const enabled = await store.getUser('u1');
        assert.deepEqual(
          [enabled?.disabledAt, enabled?.email, enabled?.passwordHash],
          [null, null, 'scrypt$new'],
        );
        assert.equal(await store.updateUser('nobody', { role: 'admin' }, at(8)), false);
      });
    });

    describe('web sessions', () => {
      beforeEach(async () => {
        await store.createUser(newUser('u1', 'ann'));
        await store.createUser(newUser('u2', 'bob'));
      });

      it('finds a session while both timeouts are ahead, never after either', async () => {
        const s = webSession('s1', 'u1', { idleExpiresAt: at(100), expiresAt: at(1000) });
        await store.createWebSession(s);
        assert.deepEqual(await store.findWebSession(s.tokenHash, at(99)), s);
        assert.equal(await store.findWebSession(s.tokenHash, at(100)), undefined, 'idle timeout');
        const t = webSession('s2', 'u1', { idleExpiresAt: at(2000), expiresAt: at(50) });
        await store.createWebSession(t);
        assert.equal(
          await store.findWebSession(t.tokenHash, at(50)),
          undefined,
          'absolute timeout',
        );
        assert.equal(await store.findWebSession(sha256('unknown'), at(0)), undefined);
        await rejectsConflict(store.createWebSession(s), 'ERR_STORE_DUPLICATE_ID');
      });

      it('a use moves the idle timeout on, never past the absolute one, and not once expired', async () => {
        const s = webSession('s1', 'u1', { idleExpiresAt: at(100), expiresAt: at(300) });
        await store.createWebSession(s);
        assert.equal(await store.touchWebSession(s.tokenHash, at(90), at(190)), true);
        assert.deepEqual(await store.findWebSession(s.tokenHash, at(150)), {
          ...s,
          lastSeenAt: at(90),
          idleExpiresAt: at(190),
        });
        assert.equal(await store.touchWebSession(s.tokenHash, at(180), at(280)), true);
        assert.equal(await store.touchWebSession(s.tokenHash, at(250), at(350)), true);
        assert.deepEqual(
          (await store.findWebSession(s.tokenHash, at(251)))?.idleExpiresAt,
          at(300),
        );
        assert.equal(await store.touchWebSession(s.tokenHash, at(300), at(400)), false);
        assert.equal(await store.touchWebSession(sha256('unknown'), at(0), at(1)), false);
      });

      it('ends one session, every session of a user, and purges expired ones', async () => {
        await store.createWebSession(webSession('a', 'u1'));
        await store.createWebSession(webSession('b', 'u1'));
        await store.createWebSession(webSession('c', 'u2'));
        await store.createWebSession(webSession('d', 'u2', { idleExpiresAt: at(10) }));
        assert.equal(await store.deleteWebSession(sha256('a')), true);
        assert.equal(await store.deleteWebSession(sha256('a')), false);
        assert.equal(await store.findWebSession(sha256('a'), at(0)), undefined);
        assert.equal(await store.deleteUserWebSessions('u1'), 1);
        assert.equal(await store.findWebSession(sha256('b'), at(0)), undefined);
        assert.ok(await store.findWebSession(sha256('c'), at(0)), "another user's session stays");
        assert.equal(await store.purgeWebSessions(at(10)), 1);
        assert.ok(await store.findWebSession(sha256('c'), at(0)));
        assert.equal(await store.purgeWebSessions(at(86_400_000)), 1);
      });
    });

    describe('download links', () => {
      beforeEach(async () => {
        await store.createUser(newUser('u1', 'ann'));
        await store.createUser(newUser('u2', 'bob'));
      });

      it('is used once, by its user only, before it expires', async () => {
        const l = downloadLink('l1', 'u1', { expiresAt: at(100) });
        await store.createDownloadLink(l);
        assert.deepEqual(await store.getDownloadLink(l.tokenHash), { ...l, usedAt: null });
        assert.equal(await store.consumeDownloadLink(l.tokenHash, 'u2', at(1)), undefined);
        assert.deepEqual(await store.consumeDownloadLink(l.tokenHash, 'u1', at(2)), {
          ...l,
          usedAt: at(2),
        });
        assert.equal(await store.consumeDownloadLink(l.tokenHash, 'u1', at(3)), undefined);
        assert.deepEqual((await store.getDownloadLink(l.tokenHash))?.usedAt, at(2));
        const late = downloadLink('l2', 'u1', { expiresAt: at(100) });
        await store.createDownloadLink(late);
        assert.equal(await store.consumeDownloadLink(late.tokenHash, 'u1', at(100)), undefined);
        assert.equal((await store.getDownloadLink(late.tokenHash))?.usedAt, null);
        assert.equal(await store.getDownloadLink(sha256('unknown')), undefined);
        await rejectsConflict(store.createDownloadLink(l), 'ERR_STORE_DUPLICATE_ID');
      });

      it('ten concurrent uses give exactly one download', async () => {
        const l = downloadLink('l1', 'u1');
        await store.createDownloadLink(l);
        const uses = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.consumeDownloadLink(l.tokenHash, 'u1', at(i))),
        );
        assert.equal(uses.filter((u) => u !== undefined).length, 1);
      });

      it('purges links that expired before a time', async () => {
        await store.createDownloadLink(downloadLink('l1', 'u1', { expiresAt: at(10) }));
        await store.createDownloadLink(downloadLink('l2', 'u1', { expiresAt: at(20) }));
        assert.equal(await store.purgeDownloadLinks(at(20)), 1);
        assert.equal(await store.getDownloadLink(sha256('l1')), undefined);
        assert.ok(await store.getDownloadLink(sha256('l2')));
      });
    });

    describe('transactions', () => {
      it('commits every write when f resolves, and returns its value', async () => {
        const value = await store.transaction(async (tx) => {
          await tx.insertCertificate(cert('01'));
          await tx.createChallenge(challenge('c1'));
          await tx.createRequest(newRequest('r1', 'tx-1'));
          await tx.appendAudit(entry(at(0), 'certificate.issued', {}));
          assert.ok(await tx.getCertificate('01'), 'a transaction reads its own writes');
          return 'done';
        });
        assert.equal(value, 'done');
        assert.ok(await store.getCertificate('01'));
        assert.ok(await store.getChallenge('c1'));
        assert.ok(await store.getRequest('r1'));
        assert.equal((await store.listAudit()).length, 1);
      });

      it('rolls back every write when f throws, and rethrows the same error', async () => {
        await store.insertCertificate(cert('02'));
        await store.createRequest(newRequest('r0', 'tx-0'));
        const boom = new Error('boom');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.insertCertificate(cert('01'));
            assert.equal(await tx.revokeCertificate('02', 1, at(5)), true);
            await tx.createChallenge(challenge('c1'));
            await tx.createRequest(newRequest('r1', 'tx-1'));
            assert.equal(await tx.decideRequest('r0', 'approved', 'cli', at(6)), true);
            await tx.appendAudit(entry(at(0), 'certificate.issued', {}));
            throw boom;
          }),
          (e) => e === boom,
        );
        assert.equal(await store.getCertificate('01'), undefined);
        assert.equal((await store.getCertificate('02'))?.revokedAt, null);
        assert.equal(await store.getChallenge('c1'), undefined);
        assert.equal(await store.getRequest('r1'), undefined);
        assert.equal((await store.getRequest('r0'))?.status, 'pending');
        assert.deepEqual(await store.listAudit(), []);
      });

      it('runs calls on the store itself from within f inside it (they roll back with it)', async () => {
        const boom = new Error('boom');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.insertCertificate(cert('01'));
            // Code that holds the store, not tx: it joins (outside, it would wait for ever).
            assert.ok(await store.getCertificate('01'), 'the store reads the transaction');
            await store.createChallenge(challenge('c1'));
            assert.ok(await tx.getChallenge('c1'), 'tx reads what the store wrote');
            throw boom;
          }),
          (e) => e === boom,
        );
        assert.equal(await store.getCertificate('01'), undefined);
        assert.equal(await store.getChallenge('c1'), undefined);
      });

      it('a transaction inside another undoes only its own writes when it throws', async () => {
        const inner = new Error('inner');
        await store.transaction(async (tx) => {
          await tx.insertCertificate(cert('01'));
          await assert.rejects(
            store.transaction(async (nested) => {
              await nested.insertCertificate(cert('02'));
              throw inner;
            }),
            (e) => e === inner,
          );
          await store.transaction((nested) => nested.insertCertificate(cert('03')));
        });
        assert.deepEqual(serials(await store.listCertificates()), ['01', '03']);
      });

      it('work left running by f uses the store once f has settled', async () => {
        let later: Promise<void> | undefined;
        const settled = Promise.withResolvers<void>();
        await store.transaction(async () => {
          later = settled.promise.then(() => store.insertCertificate(cert('09')));
        });
        settled.resolve();
        await later;
        assert.ok(await store.getCertificate('09'));
      });

      it('a call from outside while it is open neither joins it nor sees it, nor is undone with it', async () => {
        const opened = Promise.withResolvers<void>();
        const release = Promise.withResolvers<void>();
        const boom = new Error('boom');
        const tx = store.transaction(async (t) => {
          await t.insertCertificate(cert('01'));
          opened.resolve();
          await release.promise;
          throw boom;
        });
        await opened.promise;
        // From the test's own context, not from within f: outside the transaction.
        const write = store.insertCertificate(cert('02'));
        const read = store.getCertificate('01');
        release.resolve();
        await assert.rejects(tx, (e) => e === boom);
        await write;
        assert.equal(await read, undefined, 'the outside read saw no uncommitted write');
        assert.ok(await store.getCertificate('02'), 'the outside write did not roll back with it');
        assert.equal(await store.getCertificate('01'), undefined);
      });

      it('rolls back when a conflict inside aborts it, and the store stays usable', async () => {
        await store.insertCertificate(cert('01'));
        await rejectsConflict(
          store.transaction(async (tx) => {
            await tx.insertCertificate(cert('02'));
            await tx.insertCertificate(cert('01', { der: bytesOf('again') }));
          }),
          'ERR_STORE_DUPLICATE_SERIAL',
        );
        assert.equal(await store.getCertificate('02'), undefined);
        await store.insertCertificate(cert('03'));
        assert.deepEqual(serials(await store.listCertificates()), ['01', '03']);
      });
    });

    describe('values round-trip exactly', () => {
      it('bytes: empty, zero octets, every octet value', async () => {
        const all = Uint8Array.from({ length: 256 }, (_, i) => i);
        const cases = [
          new Uint8Array(0),
          Uint8Array.of(0),
          Uint8Array.of(0, 0, 0),
          Uint8Array.of(0, 1, 0),
          all,
          Uint8Array.of(9, 9, 1, 2, 3, 9).subarray(2, 5), // a view with an offset
        ];
        for (const [i, der] of cases.entries()) {
          const c = cert(`b${i}`, { der, sha1: sha1(der) });
          await store.insertCertificate(c);
          const back = await store.getCertificate(c.serial);
          assert.ok(back?.der instanceof Uint8Array);
          assert.deepEqual(back.der, der);
          const r = newRequest(`r${i}`, `tx-${i}`, { csr: der, signerCertificate: der });
          await store.createRequest(r);
          const rb = await store.getRequest(r.id);
          assert.deepEqual([rb?.csr, rb?.signerCertificate], [der, der]);
        }
        assert.equal(
          (await store.getRequest('r0'))?.signerCertificate?.length,
          0,
          'empty bytes are not null',
        );
        await store.createRequest(newRequest('rn', 'tx-n', { signerCertificate: null }));
        assert.equal((await store.getRequest('rn'))?.signerCertificate, null);
      });

      it('dates to the millisecond, including 9999-12-31T23:59:59.999Z and before 1970', async () => {
        const dates = [
          new Date('2026-03-04T05:06:07.891Z'),
          new Date('9999-12-31T23:59:59.999Z'), // notAfter of "no well-defined expiration", RFC 5280 §4.1.2.5
          new Date('1950-01-01T00:00:00.001Z'),
          new Date(0),
        ];
        for (const [i, d] of dates.entries()) {
          const c = cert(`d${i}`, { notBefore: d, notAfter: d, issuedAt: d });
          await store.insertCertificate(c);
          await store.revokeCertificate(c.serial, 0, d);
          const back = await store.getCertificate(c.serial);
          assert.deepEqual(
            [back?.notBefore, back?.notAfter, back?.issuedAt, back?.revokedAt],
            [d, d, d, d],
          );
          await store.createChallenge(challenge(`c${i}`, { createdAt: d, expiresAt: d }));
          assert.deepEqual((await store.getChallenge(`c${i}`))?.createdAt, d);
          await store.appendAudit(entry(d, 'date', {}));
        }
        assert.deepEqual(
          (await store.listAudit()).map((e) => e.at),
          dates.toSorted((a, b) => b.getTime() - a.getTime()),
        );
      });

      it('a certificate without a request keeps requestId null', async () => {
        await store.insertCertificate(cert('01', { requestId: null }));
        assert.equal((await store.getCertificate('01'))?.requestId, null);
        await store.insertCertificate(cert('02', { requestId: 'r-42' }));
        assert.equal((await store.getCertificate('02'))?.requestId, 'r-42');
      });
    });

    if (persistent) {
      describe('persistence', () => {
        it('close then open the same database: data persists, opening again migrates nothing', async () => {
          const openSame = await persistent();
          const a = await openSame();
          await a.insertCertificate(cert('01'));
          await a.createRequest(newRequest('r1', 'tx-1'));
          await a.appendAudit(entry(at(1), 'certificate.issued', { serial: '01' }));
          await a.close();
          // Opening again must not re-run 0001 (it would fail: its tables exist).
          const b = await openSame();
          try {
            assert.ok(await b.getCertificate('01'));
            assert.equal((await b.getRequest('r1'))?.status, 'pending');
            assert.equal((await b.listAudit()).length, 1);
          } finally {
            await b.close();
          }
        });

        it('two stores on one database: duplicate serial and a shared challenge have one winner', async () => {
          const openSame = await persistent();
          const a = await openSame();
          const b = await openSame();
          try {
            const inserts = await Promise.allSettled([
              a.insertCertificate(cert('01')),
              b.insertCertificate(cert('01')),
            ]);
            assert.equal(inserts.filter((r) => r.status === 'fulfilled').length, 1);
            const lost = inserts.find((r) => r.status === 'rejected');
            assert.ok(lost?.reason instanceof StoreConflictError);
            assert.equal(lost.reason.code, 'ERR_STORE_DUPLICATE_SERIAL');

            const c = challenge('c1');
            await a.createChallenge(c);
            const consumed = await Promise.all(
              Array.from({ length: 10 }, (_, i) =>
                (i % 2 ? a : b).consumeChallenge(c.secretHash, at(i)),
              ),
            );
            assert.equal(consumed.filter((r) => r !== undefined).length, 1);
          } finally {
            await a.close();
            await b.close();
          }
        });
      });
    }
  });
}

// Fixtures. Times are offsets from a fixed instant, so expected values are exact.

const BASE = Date.UTC(2026, 0, 1, 12, 0, 0, 123);

function at(offsetMs: number): Date {
  return new Date(BASE + offsetMs);
}

function bytesOf(text: string): Uint8Array {
  return Uint8Array.from([0x30, 0x00, ...new TextEncoder().encode(text), 0x00]);
}

function sha1(b: Uint8Array): string {
  return createHash('sha1').update(b).digest('hex');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function cert(serial: string, over: Partial<NewCertificate> = {}): NewCertificate {
  const der = over.der ?? bytesOf(`certificate ${serial}`);
  return {
    serial,
    sha1: sha1(der),
    subject: `CN=device-${serial}`,
    notBefore: at(0),
    notAfter: at(365 * 86_400_000),
    der,
    profile: 'device',
    requestId: null,
    issuedAt: at(0),
    altNames: [],
    ...over,
  };
}

function challenge(
  id: string,
  over: Partial<Omit<ChallengeRecord, 'usedAt'>> = {},
): Omit<ChallengeRecord, 'usedAt'> {
  return {
    id,
    secretHash: sha256(id),
    profile: 'device',
    subject: null,
    createdAt: at(0),
    expiresAt: at(3_600_000),
    ...over,
  };
}

function apiToken(
  id: string,
  over: Partial<Omit<ApiTokenRecord, 'revokedAt'>> = {},
): Omit<ApiTokenRecord, 'revokedAt'> {
  return {
    id,
    name: `token-${id}`,
    secretHash: sha256(`token ${id}`),
    role: 'admin',
    createdAt: at(0),
    expiresAt: at(86_400_000),
    ...over,
  };
}

function enrollmentToken(
  id: string,
  over: Partial<EnrollmentTokenRecord> = {},
): EnrollmentTokenRecord {
  return {
    id,
    secretHash: sha256(`enrollment ${id}`),
    user: null,
    createdAt: at(0),
    expiresAt: at(86_400_000),
    usesLeft: 1,
    ...over,
  };
}

function mdmProfile(id: string, title: string, kind: MdmProfileKind = 'trusted') {
  return {
    id,
    name: title,
    kind,
    settings: `{"n":"${title}"}`,
    createdAt: at(0),
    updatedAt: at(0),
  };
}

function newUser(
  id: string,
  username: string,
  over: Partial<Omit<UserRecord, 'disabledAt'>> = {},
): Omit<UserRecord, 'disabledAt'> {
  return {
    id,
    username,
    email: `${username.split('@')[0]}@contoso.com`,
    displayName: `User ${username}`,
    passwordHash: `scrypt$fixture$${id}`,
    role: 'user',
    createdAt: at(0),
    updatedAt: at(0),
    ...over,
  };
}

/** A session whose token is `token` (stored as its SHA-256). */
function webSession(
  token: string,
  userId: string,
  over: Partial<WebSessionRecord> = {},
): WebSessionRecord {
  return {
    tokenHash: sha256(token),
    userId,
    csrfToken: `csrf-${token}`,
    createdAt: at(0),
    lastSeenAt: at(0),
    idleExpiresAt: at(3_600_000),
    expiresAt: at(43_200_000),
    ...over,
  };
}

function downloadLink(token: string, userId: string, over: Partial<{ expiresAt: Date }> = {}) {
  return {
    tokenHash: sha256(token),
    userId,
    kind: 'pfx' as const,
    target: '0a1b',
    createdAt: at(0),
    expiresAt: at(600_000),
    ...over,
  };
}

/** An inventory entry for a certificate held at `uri`. */
function held(uri: string, thumbprint: string) {
  return {
    uri,
    thumbprint,
    subject: 'CN=x',
    issuer: 'CN=ca',
    notAfter: at(1000),
    der: bytesOf(thumbprint),
    seenAt: at(5),
  };
}

type NewDevice = Parameters<Store['createDevice']>[0];

function newDevice(id: string, over: Partial<NewDevice> = {}): NewDevice {
  return {
    id,
    hardwareId: `HW-${id}`,
    name: `device ${id}`,
    user: null,
    certificateSerial: `5e${id.length}`,
    enrolledAt: at(0),
    info: {},
    auth: null,
    ...over,
  };
}

function command(id: string, deviceId: string) {
  return { id, deviceId, payload: `{"kind":"Get","id":"${id}"}`, origin: null, createdAt: at(0) };
}

type NewRequest = Parameters<Store['createRequest']>[0];

function newRequest(id: string, transactionId: string, over: Partial<NewRequest> = {}): NewRequest {
  return {
    id,
    transactionId,
    subject: `CN=${id}`,
    profile: 'device',
    csr: bytesOf(`csr ${id}`),
    signerCertificate: null,
    createdAt: at(0),
    ...over,
  };
}

function entry(when: Date, action: string, details: Record<string, unknown>): AuditEntry {
  return { at: when, actor: 'admin:ann', action, target: 'target-1', details };
}

function serials(list: readonly { readonly serial: string }[]): string[] {
  return list.map((c) => c.serial);
}

function ids(list: readonly { readonly id: string }[]): string[] {
  return list.map((r) => r.id);
}

async function rejectsConflict(
  p: Promise<unknown>,
  code: StoreConflictError['code'],
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof StoreConflictError, `expected a StoreConflictError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}
