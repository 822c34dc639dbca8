/** `certpost serve` (what `npm start` runs): starts on a fresh data directory, logs a
 * structured `listening` line, answers, and stops cleanly on SIGTERM. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { tempDir } from '../testing/tools.ts';
import { parseListen } from './serve.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;

it('starts on a fresh data directory, serves /healthz and shuts down on SIGTERM', async () => {
  const data = join(tempDir(), 'data');
  const child = spawn(process.execPath, [BIN, 'serve', '--data', data, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listening = await new Promise<{ url: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line: ${out}`)), 10_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { url: string });
      }
    });
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
  assert.ok(existsSync(data));
  const res = await fetch(`${listening.url}/healthz`);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { status: string }).status, 'ok');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(out, /"shutting down"/);
});

it('rejects a malformed --listen', () => {
  assert.deepEqual(parseListen('[::1]:8443'), { host: '::1', port: 8443 });
  assert.throws(() => parseListen('localhost'), /host:port/);
  assert.throws(() => parseListen('127.0.0.1:99999'), /host:port/);
});

it('runs several worker processes on one port, and stops them all on SIGTERM', async () => {
  const data = join(tempDir(), 'data');
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--data', data, '--listen', '127.0.0.1:0', '--workers', '2'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const listening = await new Promise<{ url: string; workers: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line: ${out}`)), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { url: string; workers: number });
      }
    });
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
  assert.equal(listening.workers, 2);
  for (let i = 0; i < 4; i++) assert.equal((await fetch(`${listening.url}/healthz`)).status, 200);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

it('two servers starting at once on one empty data directory create one CA, not two', async () => {
  const data = join(tempDir(), 'data');
  const start = () => {
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--data', data, '--listen', '127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const ready = new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no "listening" line: ${out}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"listening"'));
        if (line) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { url: string }).url);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
    });
    return { child, ready };
  };
  const a = start();
  const b = start();
  try {
    const urls = await Promise.all([a.ready, b.ready]);
    const chains = await Promise.all(
      urls.map(async (u) =>
        Buffer.from(await (await fetch(`${u}/scep?operation=GetCACert`)).arrayBuffer()),
      ),
    );
    assert.ok(chains[0]!.length > 0);
    assert.deepEqual(chains[0], chains[1]);
  } finally {
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  }
});
