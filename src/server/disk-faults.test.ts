/**
 * Disk faults (issue 7): a read-only data directory and a full disk, made real with a private
 * mount namespace (`unshare -m`, util-linux): a read-only bind mount, and a small tmpfs that a
 * filler file fills up. The server must say what is wrong in one line, keep running where it can,
 * and never leave a damaged database behind. Needs root (CI and this machine run as root): without
 * it the suite fails saying so, it is never skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createScepClient, fetchTransport } from '../scep/client.ts';
import { spawnServe } from '../testing/serve-process.ts';
import { tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const CHALLENGE = 'disk-faults-challenge';
/** Prints the SQLite file's integrity check and its number of certificates, as JSON. */
const INTEGRITY = `
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(process.argv[1], { readOnly: true });
const integrity = db.prepare('PRAGMA integrity_check').all().map((r) => r.integrity_check);
const certificates = db.prepare('select count(*) as n from certificates').get().n;
process.stdout.write(JSON.stringify({ integrity, certificates }));
`;

describe('disk faults', () => {
  // Not a skip: without root there is no private mount namespace, and CI runs as root.
  before(() => {
    assert.equal(process.getuid?.(), 0, 'the disk fault tests need root (unshare -m, mount)');
  });

  it('a read-only data directory: one line naming the cause, exit 7, no stack trace', () => {
    const data = join(tempDir(), 'data');
    const init = spawnSync(process.execPath, [BIN, 'ca', 'init', '--data', data], {
      encoding: 'utf8',
    });
    assert.equal(init.status, 0, init.stderr);
    const r = spawnSync(
      'unshare',
      [
        '-m',
        'sh',
        '-c',
        'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"',
        'sh',
        data,
        process.execPath,
        BIN,
        'serve',
        '--data',
        data,
        '--listen',
        '127.0.0.1:0',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(r.status, 7, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `certpost: cannot open the database ${join(data, 'certpost.db')}: the file system is read-only`,
    );
  });

  it('a full disk: enrollments fail with HTTP 503, the server stays up, serves again once there is room, and the database is intact', async () => {
    const data = join(tempDir(), 'data');
    const server = await spawnServe(
      ['--data', data, '--scep-challenge', CHALLENGE, '--log-level', 'fatal'],
      {
        wrap: [
          'unshare',
          '-m',
          'sh',
          '-c',
          'mkdir -p "$1" && mount -t tmpfs -o size=3m tmpfs "$1" && shift && exec "$@"',
          'sh',
          data,
        ],
      },
    );
    try {
      // The data directory as the server sees it, inside its mount namespace.
      const inside = join(`/proc/${server.child.pid}/root`, data);
      const client = createScepClient(
        fetchTransport(`${server.url}/scep`, fetch, { timeoutMs: 15_000 }),
      );
      const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const enroll = (i: number) =>
        client.enroll({
          subject: `CN=disk-${i}`,
          key,
          challenge: CHALLENGE,
          transactionId: `disk-${i}-${randomUUID()}`,
        });
      const first = await enroll(0);
      assert.equal(first.status, 'issued');

      // Fill the tmpfs to the last byte.
      const filler = join(inside, 'filler');
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        for (let n = 0; ; n++) writeFileSync(filler, chunk, { flag: n === 0 ? 'w' : 'a' });
      } catch (e) {
        assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
      }
      const refused: string[] = [];
      for (let i = 1; i <= 5; i++) {
        try {
          const r = await enroll(i);
          refused.push(`unexpected ${r.status}`);
        } catch (e) {
          refused.push((e as Error).message);
        }
      }
      assert.ok(
        refused.every((m) => /HTTP 503/.test(m)),
        refused.join('\n'),
      );
      assert.equal(server.child.exitCode, null, 'still running');
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);

      rmSync(filler);
      const again = await enroll(99);
      assert.equal(again.status, 'issued', 'serves again without a restart');

      // Read inside the server's mount namespace: SQLite resolves /proc/PID/root to our own '/'.
      const check = spawnSync(
        'nsenter',
        [
          '-t',
          String(server.child.pid),
          '-m',
          '--',
          process.execPath,
          '-e',
          INTEGRITY,
          join(data, 'certpost.db'),
        ],
        { encoding: 'utf8' },
      );
      assert.equal(check.status, 0, check.stderr);
      assert.deepEqual(JSON.parse(check.stdout), { integrity: ['ok'], certificates: 2 });
    } finally {
      await server.stop();
    }
  });
});
