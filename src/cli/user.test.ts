/** `certpost user …` as an operator runs it: real processes on a fresh data directory. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { openStore } from '../store/open.ts';
import { tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);

function certpost(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...ENV, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

it('user create (before any CA exists), list, passwd, disable, enable; passwords never in argv or output', async () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, 'first admin password\n');

  const created = certpost([
    'user',
    'create',
    'Admin@Contoso.com',
    '--role',
    'admin',
    '--name',
    'The Admin',
    '--password-file',
    pwFile,
    '--data',
    data,
    '--json',
  ]);
  assert.equal(created.code, 0, created.stderr);
  const u = JSON.parse(created.stdout) as Record<string, unknown>;
  assert.deepEqual(
    [u['username'], u['role'], u['email'], u['displayName'], u['status']],
    ['admin@contoso.com', 'admin', 'admin@contoso.com', 'The Admin', 'active'],
  );
  assert.doesNotMatch(created.stdout, /password|scrypt/i);

  const fromEnv = certpost(['user', 'create', 'bob', '--data', data], {
    CERTPOST_USER_PASSWORD: 'bob password 123',
  });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.match(fromEnv.stdout, /^created bob {2}user {2}active {2}bob\n$/);

  const none = certpost(['user', 'create', 'carol', '--data', data]);
  assert.equal(none.code, 2, 'no password and no terminal: a usage error');
  assert.match(none.stderr, /--password-file/);
  const dup = certpost(['user', 'create', 'BOB', '--data', data], {
    CERTPOST_USER_PASSWORD: 'bob password 123',
  });
  assert.equal(dup.code, 3);
  assert.match(dup.stderr, /exists already/);
  const short = certpost(['user', 'create', 'dave', '--data', data], {
    CERTPOST_USER_PASSWORD: 'short',
  });
  assert.equal(short.code, 2);
  assert.equal(certpost(['user', 'create', 'x', '--role', 'root', '--data', data]).code, 2);

  const list = certpost(['user', 'list', '--data', data]);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(
    list.stdout,
    'admin@contoso.com  admin  active  The Admin <admin@contoso.com>\nbob  user  active  bob\n',
  );

  writeFileSync(pwFile, 'a new password for bob\n');
  assert.equal(
    certpost(['user', 'passwd', 'bob', '--password-file', pwFile, '--data', data]).code,
    0,
  );
  const disabled = certpost(['user', 'disable', 'bob', '--data', data, '--json']);
  assert.equal(disabled.code, 0, disabled.stderr);
  assert.equal((JSON.parse(disabled.stdout) as { status: string }).status, 'disabled');
  assert.equal(certpost(['user', 'disable', 'bob', '--data', data]).code, 3);
  assert.equal(certpost(['user', 'enable', 'bob', '--data', data]).stdout, 'bob active\n');
  assert.equal(
    certpost(['user', 'passwd', 'nobody', '--password-file', pwFile, '--data', data]).code,
    3,
  );

  const store = await openStore(join(data, 'certpost.db'));
  try {
    const actions = (await store.listAudit()).map((e) => `${e.actor} ${e.action}`).toReversed();
    assert.deepEqual(actions, [
      'cli user.created',
      'cli user.created',
      'cli user.password-changed',
      'cli user.disabled',
      'cli user.enabled',
    ]);
    assert.doesNotMatch(JSON.stringify(await store.listAudit()), /password for bob|scrypt\$/);
  } finally {
    await store.close();
  }
});
