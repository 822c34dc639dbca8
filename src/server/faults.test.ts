/**
 * Fault tolerance with real processes (design.md §4 "at scale"; enrollment.ts contract 5:
 * every certificate a client receives is in the database exactly once):
 * - `kill -9` of a SQLite-backed server in the middle of a burst of SCEP enrollments: after a
 *   restart on the same data directory, every certificate a client received is stored once,
 *   byte for byte, pending requests survive, and the server issues again;
 * - two server processes on one PostgreSQL database and one CA: concurrent enrollments through
 *   both give unique serials and a store count equal to what clients received, and a request
 *   held by one server is approved with the CLI and collected through the other.
 * Every process started here is killed in `after`, whatever happened; every wait is bounded.
 */
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { generateKeyPair, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { secretHash } from '../ca/enrollment.ts';
import { bytesEqual } from '../pki/der.ts';
import { sha1Thumbprint, type Certificate } from '../pki/x509.ts';
import { createScepClient, fetchTransport, type EnrollResult } from '../scep/client.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/types.ts';
import { startPostgres, type PostgresServer } from '../testing/postgres.ts';
import { spawnServe } from '../testing/serve-process.ts';
import { tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const CHALLENGE = 'faults-static-challenge';
const generateKeyPairAsync = promisify(generateKeyPair);
const execFileAsync = promisify(execFile);

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

interface Server {
  readonly child: ChildProcess;
  /** The SCEP URL (`http://127.0.0.1:PORT/scep`). */
  readonly scep: string;
  /** Everything the process wrote to stderr (for failure messages). */
  readonly stderr: () => string;
}

/** Starts `certpost serve` on a free loopback port; resolves once it prints `listening`. */
async function startCertpost(data: string, database?: string): Promise<Server> {
  const s = await spawnServe([
    '--data',
    data,
    '--scep-challenge',
    CHALLENGE,
    '--log-level',
    'warn',
    ...(database ? ['--database', database] : []),
  ]);
  children.add(s.child);
  return { child: s.child, scep: `${s.url}/scep`, stderr: s.stderr };
}

/** Resolves when the process has exited; rejects after `ms`. */
function exited(child: ChildProcess, ms = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} still running`)), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** SIGTERM (graceful: the store is closed), SIGKILL if it takes longer than 10 s. */
async function stopCertpost(s: Server): Promise<void> {
  s.child.kill('SIGTERM');
  try {
    await exited(s.child);
  } catch {
    s.child.kill('SIGKILL');
    await exited(s.child);
  }
}

/** RSA-2048 keys made once: requests reuse them with their own subject and transactionID. */
async function rsaKeys(n: number): Promise<KeyObject[]> {
  return Promise.all(
    Array.from(
      { length: n },
      async () => (await generateKeyPairAsync('rsa', { modulusLength: 2048 })).privateKey,
    ),
  );
}

async function createManualChallenge(store: Store): Promise<string> {
  const secret = randomBytes(18).toString('base64url');
  const now = new Date();
  await store.createChallenge({
    id: randomUUID(),
    secretHash: secretHash(secret),
    profile: 'manual',
    subject: null,
    createdAt: now,
    expiresAt: new Date(now.getTime() + 600_000),
  });
  return secret;
}

/** Runs `job(0..count-1)`, at most `concurrency` at a time. */
async function runPool(
  count: number,
  concurrency: number,
  job: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await job(next++);
    }),
  );
}

const serialHex = (c: Certificate) => Buffer.from(c.serial).toString('hex');

/** Asserts that each received certificate is stored exactly once, byte for byte. */
async function assertStoredOnce(store: Store, received: readonly Certificate[]): Promise<void> {
  const all = await store.listCertificates({ limit: 1_000_000 });
  const bySerial = new Map<string, number>();
  const bySha1 = new Map<string, number>();
  for (const r of all) {
    bySerial.set(r.serial, (bySerial.get(r.serial) ?? 0) + 1);
    bySha1.set(r.sha1, (bySha1.get(r.sha1) ?? 0) + 1);
  }
  assert.equal(bySerial.size, all.length, 'no duplicate serials in the store');
  assert.equal(new Set(received.map(serialHex)).size, received.length, 'received serials unique');
  for (const cert of received) {
    const serial = serialHex(cert);
    const sha1 = sha1Thumbprint(cert);
    assert.equal(bySerial.get(serial), 1, `serial ${serial} stored once`);
    assert.equal(bySha1.get(sha1), 1, `sha1 ${sha1} stored once`);
    const rec = await store.getCertificate(serial);
    assert.ok(rec && bytesEqual(rec.der, cert.der), `serial ${serial}: stored DER = received DER`);
    const bySha = await store.getCertificateBySha1(sha1);
    assert.equal(bySha?.serial, serial);
  }
}

describe('kill -9 under load (SQLite)', () => {
  it(
    'keeps every certificate a client received, exactly once, and the pending requests',
    { timeout: 60_000 },
    async (t) => {
      const started = Date.now();
      const data = join(tempDir('certpost-faults-'), 'data');
      const dbFile = join(data, 'certpost.db');
      const [first, keys] = await Promise.all([startCertpost(data), rsaKeys(8)]);

      // Five requests held for approval before the load.
      const setup = await openStore(dbFile);
      const secrets: string[] = [];
      try {
        for (let i = 0; i < 5; i++) secrets.push(await createManualChallenge(setup));
      } finally {
        await setup.close();
      }
      const client = createScepClient(fetchTransport(first.scep, fetch, { timeoutMs: 15_000 }));
      const pending: string[] = [];
      for (const [i, secret] of secrets.entries()) {
        const r = await client.enroll({
          subject: `CN=held-${i},O=faults`,
          key: keys[i]!,
          challenge: secret,
          transactionId: `held-${i}-${randomUUID()}`,
        });
        assert.equal(r.status, 'pending', JSON.stringify(r));
        pending.push(r.transactionId);
      }

      // 200 enrollments, 16 at a time; SIGKILL once 60 have been received (the rest then fail).
      const received: Certificate[] = [];
      let failed = 0;
      let killed = false;
      await runPool(200, 16, async (i) => {
        let r: EnrollResult;
        try {
          r = await client.enroll({
            subject: `CN=load-${i},O=faults`,
            key: keys[i % keys.length]!,
            challenge: CHALLENGE,
            transactionId: `load-${i}-${randomUUID()}`,
          });
        } catch {
          failed++; // aborted by the kill: allowed
          return;
        }
        if (r.status !== 'issued') {
          failed++;
          return;
        }
        received.push(r.certificate);
        if (received.length >= 60 && !killed) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      });
      assert.ok(killed, `the server was killed (received ${received.length}, failed ${failed})`);
      await exited(first.child);
      assert.equal(first.child.signalCode, 'SIGKILL');
      t.diagnostic(`received ${received.length} certificates, ${failed} requests failed`);

      // Restart on the same data directory: it serves a new enrollment.
      const second = await startCertpost(data);
      const fresh = await createScepClient(fetchTransport(second.scep)).enroll({
        subject: 'CN=after-restart,O=faults',
        key: keys[0]!,
        challenge: CHALLENGE,
        transactionId: `after-${randomUUID()}`,
      });
      assert.equal(fresh.status, 'issued', JSON.stringify(fresh));
      await stopCertpost(second);

      const store = await openStore(dbFile);
      try {
        await assertStoredOnce(store, [...received, fresh.certificate]);
        for (const tid of pending)
          assert.equal((await store.getRequestByTransaction(tid))?.status, 'pending', tid);
        assert.equal((await store.listRequests('pending')).length, 5);
        const stored = (await store.listCertificates({ limit: 1_000_000 })).length;
        t.diagnostic(`store holds ${stored} certificates; ${Date.now() - started} ms`);
      } finally {
        await store.close();
      }
    },
  );
});

describe('two server processes on one PostgreSQL database', () => {
  let pg: PostgresServer | undefined;
  let store: Store | undefined;
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await store?.close();
    await pg?.stop();
  });

  it(
    'issues through both with unique serials, and hands a held request across',
    { timeout: 60_000 },
    async (t) => {
      const started = Date.now();
      const [server, keys] = await Promise.all([startPostgres(), rsaKeys(8)]);
      pg = server;
      const data = join(tempDir('certpost-faults-'), 'data');
      // The first process creates the CA in the data directory; the second reads the same files.
      const a = await startCertpost(data, pg.url);
      const b = await startCertpost(data, pg.url);
      const clientA = createScepClient(fetchTransport(a.scep, fetch, { timeoutMs: 15_000 }));
      const clientB = createScepClient(fetchTransport(b.scep, fetch, { timeoutMs: 15_000 }));
      const [caA, caB] = await Promise.all([clientA.caCertificates(), clientB.caCertificates()]);
      assert.deepEqual(caA.map(sha1Thumbprint), caB.map(sha1Thumbprint), 'one CA');

      const received: Certificate[] = [];
      const failures: string[] = [];
      const N = 150;
      await runPool(N, 16, async (i) => {
        try {
          const r = await (i % 2 ? clientB : clientA).enroll({
            subject: `CN=pg-${i},O=faults`,
            key: keys[i % keys.length]!,
            challenge: CHALLENGE,
            transactionId: `pg-${i}-${randomUUID()}`,
          });
          if (r.status === 'issued') received.push(r.certificate);
          else failures.push(`${i}: ${JSON.stringify(r)}`);
        } catch (e) {
          failures.push(`${i}: ${(e as Error).message}`);
        }
      });
      assert.deepEqual(failures, [], `${a.stderr()}\n${b.stderr()}`);
      assert.equal(received.length, N);
      store = await openStore(pg.url);
      await assertStoredOnce(store, received);
      assert.equal((await store.listCertificates({ limit: 1_000_000 })).length, N);
      t.diagnostic(`${N} enrollments through two processes: ${Date.now() - started} ms so far`);

      // Held on A, seen and approved through B's data directory and database, collected via B.
      const key = keys[0]!;
      const subject = 'CN=pg-held,O=faults';
      const held = await clientA.enroll({
        subject,
        key,
        challenge: await createManualChallenge(store),
        transactionId: `pg-held-${randomUUID()}`,
      });
      assert.equal(held.status, 'pending', JSON.stringify(held));
      const cli = (...args: string[]) =>
        execFileAsync(
          process.execPath,
          [BIN, 'requests', ...args, '--data', data, '--database', pg!.url, '--json'],
          { timeout: 20_000 },
        );
      const listed = JSON.parse((await cli('list')).stdout) as {
        requests: { id: string; transactionId: string }[];
      };
      const request = listed.requests.find((r) => r.transactionId === held.transactionId);
      assert.ok(request, 'the held request is listed through the shared database');
      assert.deepEqual(JSON.parse((await cli('approve', request.id)).stdout), {
        id: request.id,
        status: 'approved',
      });
      const polled = await clientB.poll({
        transactionId: held.transactionId,
        subject,
        key,
        signer: held.signer,
      });
      assert.equal(polled.status, 'issued', JSON.stringify(polled));
      assert.equal((await store.getRequest(request.id))?.status, 'issued');
      await assertStoredOnce(store, [...received, polled.certificate]);
      await Promise.all([stopCertpost(a), stopCertpost(b)]);
      t.diagnostic(`total ${Date.now() - started} ms`);
    },
  );
});

describe('PostgreSQL restarted under load', () => {
  let pg: PostgresServer | undefined;
  let store: Store | undefined;
  after(async () => {
    await store?.close();
    await pg?.stop();
  });

  it(
    'requests fail cleanly while it is down, and the same server process serves again once it is back',
    { timeout: 90_000 },
    async (t) => {
      const [server, keys] = await Promise.all([startPostgres(), rsaKeys(4)]);
      pg = server;
      const data = join(tempDir('certpost-faults-'), 'data');
      const certpost = await startCertpost(data, pg.url);
      const base = certpost.scep.replace(/\/scep$/, '');
      const client = createScepClient(fetchTransport(certpost.scep, fetch, { timeoutMs: 15_000 }));
      await client.caCertificates();
      const received: Certificate[] = [];
      const failed: string[] = [];
      let attempt = 0;
      const enroll = async (): Promise<void> => {
        const i = attempt++;
        try {
          const r = await client.enroll({
            subject: `CN=pg-restart-${i},O=faults`,
            key: keys[i % keys.length]!,
            challenge: CHALLENGE,
            transactionId: `pg-restart-${i}-${randomUUID()}`,
          });
          if (r.status === 'issued') received.push(r.certificate);
          else failed.push(`${i}: ${r.status}`);
        } catch (e) {
          failed.push(`${i}: ${(e as Error).message}`);
        }
      };

      // Load before, during and after the outage: 8 clients enrolling back to back.
      let outage = true;
      const load = runPool(10_000, 8, async () => {
        if (outage || received.length < 400) await enroll();
      });
      while (received.length < 20) await new Promise((r) => setTimeout(r, 20));
      await pg.halt();
      const down = await fetch(`${base}/readyz`);
      assert.equal(down.status, 503, 'not ready while the database is down');
      const whileDown = failed.length;
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(failed.length > whileDown, 'requests during the outage fail');
      assert.equal(
        certpost.child.exitCode,
        null,
        `the server is still running\n${certpost.stderr()}`,
      );
      await pg.resume();
      const before = received.length;
      // Recovered without a restart: fresh enrollments succeed again.
      const deadline = Date.now() + 30_000;
      while (received.length < before + 20 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      outage = false;
      await load;
      assert.ok(
        received.length >= before + 20,
        `recovered: ${received.length - before} issued after`,
      );
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      // Failures were HTTP errors or refusals, never a hang (each request is bounded by 15 s).
      assert.ok(
        failed.every((f) => /HTTP 503/.test(f)),
        failed.slice(0, 5).join('\n'),
      );
      t.diagnostic(
        `${received.length} issued, ${failed.length} failed during the outage (first: ${failed[0] ?? '-'})`,
      );
      store = await openStore(pg.url);
      await assertStoredOnce(store, received);
      assert.equal(certpost.child.exitCode, null);
      await stopCertpost(certpost);
    },
  );
});
