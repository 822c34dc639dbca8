/** The administration commands as an operator runs them: real processes on a data directory. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);

function certpost(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

it('ca init, challenge create and requests, with clear errors', () => {
  const data = join(tempDir(), 'data');
  const none = certpost('challenge', 'create', '--data', data);
  assert.equal(none.code, 3);
  assert.match(none.stderr, /no CA in .*certpost ca init/);

  const init = certpost('ca', 'init', '--data', data, '--json');
  assert.equal(init.code, 0, init.stderr);
  const { certificates } = JSON.parse(init.stdout) as {
    certificates: { subject: string; sha1: string }[];
  };
  assert.equal(certificates.length, 2);
  assert.match(certificates[0]!.subject, /root CA/);
  assert.equal(statSync(join(data, 'ca', 'passphrase')).mode & 0o777, 0o600);
  const again = certpost('ca', 'init', '--data', data);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already has a CA/);

  const plain = certpost('challenge', 'create', '--data', data);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^[A-Za-z0-9_-]{32}\n$/);
  const json = certpost(
    'challenge',
    'create',
    '--data',
    data,
    '--profile',
    'manual',
    '--subject',
    'CN=device-1',
    '--ttl',
    '2h',
    '--json',
  );
  assert.equal(json.code, 0, json.stderr);
  const c = JSON.parse(json.stdout) as {
    challenge: string;
    profile: string;
    subject: string;
    expiresAt: string;
  };
  assert.equal(c.profile, 'manual');
  assert.equal(c.subject, 'CN=device-1');
  assert.ok(Math.abs(new Date(c.expiresAt).getTime() - Date.now() - 7_200_000) < 60_000);
  assert.equal(certpost('challenge', 'create', '--data', data, '--profile', 'nope').code, 2);
  assert.equal(certpost('challenge', 'create', '--data', data, '--ttl', 'soon').code, 2);

  const list = certpost('requests', 'list', '--data', data, '--json');
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), { requests: [] });
  const approve = certpost('requests', 'approve', '--data', data, 'no-such-id');
  assert.equal(approve.code, 3);
  assert.match(approve.stderr, /does not exist or is not pending/);
});
