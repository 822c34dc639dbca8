/**
 * `certpost doctor` against real deployments: a fresh data directory on SQLite, one on
 * PostgreSQL whose clock we read as skewed, a running server over HTTP, and the command line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { startPostgres, type PostgresServer } from '../testing/postgres.ts';
import { freePort, tempDir } from '../testing/tools.ts';
import { openContext, type ServerContext } from './context.ts';
import { overall, runDoctor, type Check } from './doctor.ts';
import { buildApp } from './serve.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const DAY = 86_400_000;

function byId(checks: readonly Check[], id: string): Check {
  const c = checks.find((x) => x.id === id);
  assert.ok(c, `no check ${id} in ${checks.map((x) => x.id).join(', ')}`);
  return c;
}

describe('doctor on SQLite', () => {
  let dataDir: string;
  let ctx: ServerContext;
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    dataDir = join(tempDir(), 'data');
    ctx = await openContext({ dataDir, createCa: true });
    app = buildApp(ctx, { logLevel: 'silent' });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
  });

  it('finds a fresh deployment healthy, and says what it checked', async () => {
    const checks = await runDoctor(ctx, { dataDir, url });
    assert.deepEqual(
      checks.map((c) => [c.id, c.status]),
      [
        ['data-directory', 'ok'],
        ['database', 'ok'],
        ['ca-expiry', 'ok'],
        ['ca-keys', 'ok'],
        ['crl', 'ok'],
        ['pending-requests', 'ok'],
        ['server', 'ok'],
      ],
      JSON.stringify(checks, null, 2),
    );
    assert.equal(overall(checks), 'ok');
    assert.match(byId(checks, 'ca-keys').summary, /signs and the SCEP key decrypts/);
    assert.equal(byId(checks, 'database').detail?.['backend'], 'sqlite');
  });

  it('warns inside the expiry window, fails after expiry and when the clock is before the CA', async () => {
    const notAfter = ctx.ca.issuing.certificate.notAfter.getTime();
    const at = (ms: number) => async () =>
      byId(await runDoctor(ctx, { dataDir, now: () => new Date(ms) }), 'ca-expiry');
    const soon = await at(notAfter - 30 * DAY)();
    assert.equal(soon.status, 'warn');
    assert.match(soon.summary, /expires in (29|30) days/);
    const gone = await at(notAfter + DAY)();
    assert.equal(gone.status, 'fail');
    assert.match(gone.summary, /expired on .*certpost ca rollover/);
    const early = await at(ctx.ca.root.certificate.notBefore.getTime() - DAY)();
    assert.equal(early.status, 'fail');
    assert.match(early.summary, /clock is behind/);
  });

  it("warns when the server's clock differs from ours, fails when it cannot be reached", async () => {
    const skewed = byId(
      await runDoctor(ctx, { dataDir, url, now: () => new Date(Date.now() - 60_000) }),
      'server',
    );
    assert.equal(skewed.status, 'warn');
    assert.match(skewed.summary, /clock is (59|60)\.\d s ahead of this machine's/);
    const port = await freePort();
    const down = byId(await runDoctor(ctx, { dataDir, url: `http://127.0.0.1:${port}` }), 'server');
    assert.equal(down.status, 'fail');
    assert.match(down.summary, /cannot be reached/);
  });

  it('fails a data directory it cannot write to, naming it', async () => {
    const missing = join(tempDir(), 'gone');
    const c = byId(await runDoctor(ctx, { dataDir: missing }), 'data-directory');
    assert.equal(c.status, 'fail');
    assert.ok(c.summary.startsWith(`${missing} is not writable`), c.summary);
  });

  it('certpost doctor prints one line per check, --json the same as data, exit 13 on a failure', () => {
    const env = { ...process.env, CERTPOST_DATA: undefined };
    const human = spawnSync(process.execPath, [BIN, 'doctor', '--data', dataDir], {
      encoding: 'utf8',
      env,
    });
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /^✔ data-directory +.* is writable/m);
    assert.match(human.stdout, /^✔ crl +CRL \d+ lists 0 revoked/m);
    const bad = spawnSync(
      process.execPath,
      [BIN, 'doctor', '--data', dataDir, '--url', 'http://127.0.0.1:1', '--json'],
      { encoding: 'utf8', env },
    );
    assert.equal(bad.status, 13, bad.stderr);
    const doc = JSON.parse(bad.stdout) as { status: string; checks: Check[] };
    assert.equal(doc.status, 'fail');
    assert.equal(byId(doc.checks, 'server').status, 'fail');
    assert.match(bad.stderr, /1 check\(s\) failed/);
  });
});

describe('doctor on PostgreSQL', () => {
  let pg: PostgresServer;
  let ctx: ServerContext;
  let dataDir: string;

  before(async () => {
    pg = await startPostgres();
    dataDir = join(tempDir(), 'data');
    ctx = await openContext({ dataDir, database: pg.url, createCa: true });
  });
  after(async () => {
    await ctx?.close();
    await pg?.stop();
  });

  /** The database check as if this machine's clock were `offsetMs` off. */
  async function db(offsetMs: number): Promise<Check> {
    return byId(
      await runDoctor(ctx, { dataDir, now: () => new Date(Date.now() + offsetMs) }),
      'database',
    );
  }

  it("reads the database's clock: equal is ok, seconds off warn, minutes off fail", async () => {
    const same = await db(0);
    assert.equal(same.status, 'ok', same.summary);
    assert.equal(same.detail?.['backend'], 'postgres');
    const seconds = await db(30_000);
    assert.equal(seconds.status, 'warn');
    assert.match(seconds.summary, /PostgreSQL's clock is (29|30)\.\d s behind this machine's/);
    assert.equal((await db(-10 * 60_000)).status, 'fail');
  });
});
