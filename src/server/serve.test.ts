/** `certpost serve` (what `npm start` runs): starts on a fresh data directory, logs a
 * structured `listening` line, answers, and stops cleanly on SIGTERM. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { spawnServe } from '../testing/serve-process.ts';
import { tempDir } from '../testing/tools.ts';
import { parseListen, urlOf } from './serve.ts';

it('starts on a fresh data directory, serves /healthz and shuts down on SIGTERM', async () => {
  const data = join(tempDir(), 'data');
  const server = await spawnServe(['--data', data]);
  assert.ok(existsSync(data));
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { status: string }).status, 'ok');
  assert.equal(await server.stop(), 0);
  assert.match(server.output(), /"shutting down"/);
});

it('rejects a malformed --listen', () => {
  assert.deepEqual(parseListen('[::1]:8443'), { host: '::1', port: 8443 });
  assert.throws(() => parseListen('localhost'), /host:port/);
  assert.throws(() => parseListen('127.0.0.1:99999'), /host:port/);
});

it('runs several worker processes on one port, and stops them all on SIGTERM', async () => {
  const server = await spawnServe(['--data', join(tempDir(), 'data'), '--workers', '2']);
  assert.equal(server.listening['workers'], 2);
  for (let i = 0; i < 4; i++) assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  assert.equal(await server.stop(), 0);
});

it('two servers starting at once on one empty data directory create one CA, not two', async () => {
  const data = join(tempDir(), 'data');
  const started = await Promise.allSettled([
    spawnServe(['--data', data]),
    spawnServe(['--data', data]),
  ]);
  const running = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    // Both must start (a failure is the test's failure; the one that did start is stopped).
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const chains = await Promise.all(
      running.map(async (s) =>
        Buffer.from(await (await fetch(`${s.url}/scep?operation=GetCACert`)).arrayBuffer()),
      ),
    );
    assert.ok(chains[0]!.length > 0);
    assert.deepEqual(chains[0], chains[1]);
  } finally {
    await Promise.all(running.map((s) => s.stop('SIGKILL')));
  }
});

describe('urlOf', () => {
  it('names this machine for a wildcard listen address, keeps others, brackets IPv6', () => {
    assert.equal(urlOf('http', '127.0.0.1', 8080), 'http://127.0.0.1:8080');
    assert.equal(urlOf('https', '::1', 8443), 'https://[::1]:8443');
    assert.equal(urlOf('http', '0.0.0.0', 80), `http://${hostname()}:80`);
    assert.equal(urlOf('http', '::', 80), `http://${hostname()}:80`);
  });
});
