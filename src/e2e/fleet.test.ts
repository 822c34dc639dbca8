/**
 * `certpost fleet` as outside checks run it (a stable interface): `certpost serve` on a fresh
 * data directory, `certpost profile apply-defaults`, then `certpost fleet --json`, all real
 * processes on loopback.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnServe, type ServeProcess } from '../testing/serve-process.ts';
import { tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);
let server: ServeProcess;
let data = '';

before(async () => {
  data = join(tempDir(), 'data');
  server = await spawnServe(['--data', data, '--log-level', 'warn'], { env: ENV });
  execFileSync(process.execPath, [BIN, 'profile', 'apply-defaults', '--data', data], { env: ENV });
});

after(async () => {
  await server.stop('SIGTERM');
});

describe('certpost fleet', () => {
  it('enrolls N devices that each get the root and a SCEP certificate, and prints one JSON object', () => {
    const out = execFileSync(
      process.execPath,
      [BIN, 'fleet', '--server', server.url, '--devices', '6', '--concurrency', '3', '--json'],
      { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString();
    const r = JSON.parse(out) as Record<string, unknown>;
    assert.equal(r['devices'], 6);
    assert.equal(r['enrolled'], 6);
    assert.equal(r['certificatesInstalled'], 6);
    assert.equal(r['failures'], 0);
    assert.equal(typeof r['seconds'], 'number');
    const devices = JSON.parse(
      execFileSync(process.execPath, [BIN, 'mdm', 'devices', '--data', data, '--json'], {
        env: ENV,
      }).toString(),
    ) as { devices: { name: string }[] };
    assert.equal(devices.devices.length, 6);
  });

  it('counts failures and exits non-zero when the server refuses enrollment', () => {
    let code = 0;
    let out = '';
    try {
      execFileSync(
        process.execPath,
        [BIN, 'fleet', '--server', `${server.url}/nowhere`, '--devices', '2', '--json'],
        { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
      );
    } catch (e) {
      const err = e as { status: number; stdout: Buffer };
      code = err.status;
      out = err.stdout.toString();
    }
    assert.notEqual(code, 0);
    const r = JSON.parse(out) as Record<string, unknown>;
    assert.equal(r['failures'], 2);
    assert.equal(r['enrolled'], 0);
  });
});
