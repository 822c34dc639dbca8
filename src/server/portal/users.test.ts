/** Portal users and their passwords: the operations `certpost user` and the sign-in share. */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSqliteStore } from '../../store/sqlite.ts';
import type { Store } from '../../store/types.ts';
import { AdminError } from '../admin-ops.ts';
import { DEFAULT_PARAMS, hashPassword, needsRehash, verifyPassword } from './password.ts';
import { CHEAP_SCRYPT } from './testing.ts';
import * as users from './users.ts';

const PW = 'correct horse battery';

describe('password hashes', () => {
  it('scrypt with a fresh salt and the parameters in the string; verifies only the same password', async () => {
    const a = await hashPassword(PW);
    const b = await hashPassword(PW);
    assert.match(a, /^scrypt\$32768\$8\$3\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a, b, 'a fresh salt each time');
    assert.equal(await verifyPassword(PW, a), true);
    assert.equal(await verifyPassword(`${PW} `, a), false);
    assert.equal(await verifyPassword('', a), false);
    const cheap = await hashPassword(PW, CHEAP_SCRYPT);
    assert.equal(await verifyPassword(PW, cheap), true, 'stored parameters are used');
    assert.equal(needsRehash(cheap), true);
    assert.equal(needsRehash(a), false);
  });

  it('NFC: a composed and a decomposed é are the same password', async () => {
    const h = await hashPassword('caf\u00e9-passw0rd', CHEAP_SCRYPT);
    assert.equal(await verifyPassword('cafe\u0301-passw0rd', h), true);
  });

  it('malformed hashes and parameters beyond the limits never match', async () => {
    const good = await hashPassword(PW, CHEAP_SCRYPT);
    const [, , r, p, salt, key] = good.split('$');
    for (const bad of [
      '',
      'plain-text-password',
      good.replace('scrypt$', 'bcrypt$'),
      `scrypt$${2 ** 21}$${r}$${p}$${salt}$${key}`,
      `scrypt$1000$${r}$${p}$${salt}$${key}`,
      `scrypt$1024$${r}$99$${salt}$${key}`,
      `${good}x`,
    ])
      assert.equal(await verifyPassword(PW, bad), false, bad);
    assert.equal(DEFAULT_PARAMS.N, 2 ** 15);
  });
});

describe('user operations', () => {
  let store: Store;
  let t = Date.parse('2026-05-01T08:00:00Z');
  const deps = () => ({ store, passwordParams: CHEAP_SCRYPT, now: () => new Date(t) });
  beforeEach(async () => {
    store = await openSqliteStore(':memory:');
  });
  afterEach(async () => {
    await store.close();
  });

  it('creates a user: lowercase name, email from a UPN, role user by default; audited without the password', async () => {
    const u = await users.createUser(deps(), 'cli', {
      username: ' Ann@Contoso.com ',
      password: PW,
    });
    assert.deepEqual(
      { ...u, id: '', createdAt: '', updatedAt: '' },
      {
        id: '',
        username: 'ann@contoso.com',
        email: 'ann@contoso.com',
        displayName: 'ann',
        role: 'user',
        status: 'active',
        createdAt: '',
        updatedAt: '',
      },
    );
    const plain = await users.createUser(deps(), 'cli', {
      username: 'bob',
      password: PW,
      role: 'admin',
      displayName: 'Bob Admin',
    });
    assert.equal(plain.email, null);
    const [audit] = await store.listAudit({ action: 'user.created', limit: 1 });
    assert.equal(audit?.actor, 'cli');
    assert.doesNotMatch(JSON.stringify(await store.listAudit()), /horse|scrypt/);
    assert.deepEqual(
      (await users.listUsers(deps())).users.map((x) => [x.username, x.role]),
      [
        ['ann@contoso.com', 'user'],
        ['bob', 'admin'],
      ],
    );
  });

  it('refuses bad names, short passwords, bad emails and duplicates, storing nothing', async () => {
    const refuse = async (o: Parameters<typeof users.createUser>[2], code: string) =>
      assert.rejects(users.createUser(deps(), 'cli', o), (e: unknown) => {
        assert.ok(e instanceof AdminError);
        assert.equal(e.code, code);
        return true;
      });
    await refuse({ username: 'ann smith', password: PW }, 'ERR_ADMIN_INVALID');
    await refuse({ username: '<script>', password: PW }, 'ERR_ADMIN_INVALID');
    await refuse({ username: 'ann', password: 'short' }, 'ERR_ADMIN_INVALID');
    await refuse({ username: 'ann', password: PW, email: 'not-an-email' }, 'ERR_ADMIN_INVALID');
    await refuse({ username: 'ann', password: PW, displayName: 'a\u0007b' }, 'ERR_ADMIN_INVALID');
    assert.deepEqual(await store.listUsers(), []);
    await users.createUser(deps(), 'cli', { username: 'ann', password: PW });
    await refuse({ username: 'ANN', password: PW }, 'ERR_ADMIN_CONFLICT');
    assert.equal((await store.listUsers()).length, 1);
  });

  it('checks credentials: only the right password of an enabled user; case-insensitive name', async () => {
    await users.createUser(deps(), 'cli', { username: 'ann@contoso.com', password: PW });
    assert.equal(
      (await users.checkCredentials(deps(), 'ANN@contoso.com', PW))?.username,
      'ann@contoso.com',
    );
    assert.equal(
      await users.checkCredentials(deps(), 'ann@contoso.com', 'wrong password!'),
      undefined,
    );
    assert.equal(await users.checkCredentials(deps(), 'nobody', PW), undefined);
    assert.equal(await users.checkCredentials(deps(), 'not a name', PW), undefined);
    await users.setDisabled(deps(), 'cli', 'ann@contoso.com', true);
    assert.equal(await users.checkCredentials(deps(), 'ann@contoso.com', PW), undefined);
    await assert.rejects(users.setDisabled(deps(), 'cli', 'ann@contoso.com', true), AdminError);
    await users.setDisabled(deps(), 'cli', 'ann@contoso.com', false);
    assert.ok(await users.checkCredentials(deps(), 'ann@contoso.com', PW));
  });

  it('a hash made with weaker parameters is replaced at the next successful check', async () => {
    await users.createUser({ ...deps(), passwordParams: { N: 512, r: 8, p: 1 } }, 'cli', {
      username: 'ann',
      password: PW,
    });
    const before = (await store.getUserByName('ann'))!.passwordHash;
    assert.ok(await users.checkCredentials(deps(), 'ann', PW));
    const after = (await store.getUserByName('ann'))!.passwordHash;
    assert.notEqual(after, before);
    assert.match(after, /^scrypt\$1024\$/);
    assert.ok(await users.checkCredentials(deps(), 'ann', PW));
  });

  it('a new password or disabling ends the user`s sessions', async () => {
    const u = await users.createUser(deps(), 'cli', { username: 'ann', password: PW });
    const session = (token: string) => ({
      tokenHash: token.padEnd(64, '0'),
      userId: u.id,
      csrfToken: 'c',
      createdAt: new Date(t),
      lastSeenAt: new Date(t),
      idleExpiresAt: new Date(t + 60_000),
      expiresAt: new Date(t + 600_000),
    });
    await store.createWebSession(session('a'));
    await users.setPassword(deps(), 'portal:admin', 'ann', 'another long password');
    assert.equal(await store.findWebSession('a'.padEnd(64, '0'), new Date(t)), undefined);
    assert.equal(await users.checkCredentials(deps(), 'ann', PW), undefined);
    assert.ok(await users.checkCredentials(deps(), 'ann', 'another long password'));
    await store.createWebSession(session('b'));
    t += 1000;
    const disabled = await users.setDisabled(deps(), 'cli', 'ann', true);
    assert.equal(disabled.status, 'disabled');
    assert.equal(await store.findWebSession('b'.padEnd(64, '0'), new Date(t)), undefined);
    const actions = (await store.listAudit()).map((e) => `${e.actor} ${e.action}`);
    assert.deepEqual(actions.slice(0, 2), [
      'cli user.disabled',
      'portal:admin user.password-changed',
    ]);
    await assert.rejects(users.setPassword(deps(), 'cli', 'nobody', PW), AdminError);
  });
});
