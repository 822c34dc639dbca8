/**
 * The reference SCEP server harness keeps its promises: scepserver answers through the bridge
 * on the host's 127.0.0.1 only, serves the openssl-made CA, and `stop()` leaves no process
 * running and the port closed.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { runningInGroup, startReferenceScep } from './reference-scep.ts';
import { run } from './tools.ts';

const comm = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};

it('runs scepserver on 127.0.0.1 only, serves its CA, and stop() leaves nothing running', async () => {
  const server = await startReferenceScep({ challenge: 'harness' });
  const port = new URL(server.url).port;
  try {
    const caps = await (await fetch(`${server.url}?operation=GetCACaps`)).text();
    assert.ok(caps.split('\n').includes('SCEPStandard'), caps);
    const caCert = await fetch(`${server.url}?operation=GetCACert`);
    assert.equal(caCert.headers.get('content-type'), 'application/x-x509-ca-cert');
    assert.ok(
      new X509Certificate(Buffer.from(await caCert.arrayBuffer())).raw.equals(
        new X509Certificate(server.caCertPem).raw,
      ),
    );
    // Host namespace: our port on 127.0.0.1 only, and no listener belongs to scepserver.
    const listeners = run('ss', ['-ltnpH']).toString().split('\n');
    const ours = listeners.filter((l) => l.split(/\s+/)[3]?.endsWith(`:${port}`));
    assert.deepEqual(
      ours.map((l) => l.split(/\s+/)[3]),
      [`127.0.0.1:${port}`],
    );
    assert.ok(!listeners.some((l) => l.includes('"scepserver"')), listeners.join('\n'));
  } finally {
    const groups = server.processGroups();
    const members = groups.flatMap(runningInGroup);
    assert.ok(members.map(comm).includes('scepserver'), 'scepserver runs in a recorded group');
    await server.stop();
    assert.deepEqual(groups.flatMap(runningInGroup), []);
  }
  await assert.rejects(fetch(`${server.url}?operation=GetCACaps`), 'the port is closed');
});
