import assert from 'node:assert/strict';
import { it } from 'node:test';
import { openSqliteStore } from '../store/sqlite.ts';
import { FailureLimiter, StoreFailureLimiter } from './rate-limit.ts';

it('blocks a key after maxFailures within the window, and frees it when the window passes', async () => {
  let t = 1_000_000;
  const l = new FailureLimiter({ maxFailures: 3, windowMs: 60_000, now: () => t });
  for (let i = 0; i < 3; i++) {
    assert.equal(await l.blocked('10.0.0.1'), false);
    await l.fail('10.0.0.1');
  }
  assert.equal(await l.blocked('10.0.0.1'), true);
  assert.equal(await l.blocked('10.0.0.2'), false, 'other clients are not affected');
  t += 60_001;
  assert.equal(await l.blocked('10.0.0.1'), false);
});

it('tracks at most maxKeys keys, dropping the oldest', async () => {
  const l = new FailureLimiter({ maxFailures: 1, maxKeys: 2 });
  await l.fail('a');
  await l.fail('b');
  await l.fail('c');
  assert.equal(await l.blocked('a'), false);
  assert.equal(await l.blocked('b'), true);
  assert.equal(await l.blocked('c'), true);
});

it('in the store, two limiters (two processes) share one count, and a window frees the key', async () => {
  const store = await openSqliteStore(':memory:');
  try {
    let t = Date.parse('2026-03-01T00:00:00Z');
    const o = { namespace: 'challenge:', maxFailures: 3, windowMs: 60_000, now: () => t };
    const a = new StoreFailureLimiter(store, o);
    const b = new StoreFailureLimiter(store, o);
    await a.fail('198.51.100.1');
    await b.fail('198.51.100.1');
    assert.equal(await a.blocked('198.51.100.1'), false);
    await a.fail('198.51.100.1');
    assert.equal(
      await b.blocked('198.51.100.1'),
      true,
      'the other process sees all three failures',
    );
    assert.equal(await b.blocked('198.51.100.2'), false);
    t += 60_001;
    assert.equal(await a.blocked('198.51.100.1'), false);
  } finally {
    await store.close();
  }
});

it('in the store, a limiter counts and purges only its own namespace', async () => {
  const store = await openSqliteStore(':memory:');
  try {
    let t = Date.parse('2026-03-01T00:00:00Z');
    const short = new StoreFailureLimiter(store, {
      namespace: 'a:',
      maxFailures: 1000,
      windowMs: 1000,
      now: () => t,
    });
    const long = new StoreFailureLimiter(store, {
      namespace: 'b:',
      maxFailures: 1,
      windowMs: 3_600_000,
      now: () => t,
    });
    await long.fail('k');
    assert.equal(await short.blocked('k'), false, 'the same key in another namespace');
    t += 10_000;
    // 100 failures make the short limiter purge what is older than its own window.
    for (let i = 0; i < 100; i++) await short.fail('x');
    assert.equal(await long.blocked('k'), true, 'the other namespace was not purged');
    assert.equal(await store.countFailures('a:x', new Date(0)), 100);
    assert.throws(() => new StoreFailureLimiter(store, { namespace: '' }), RangeError);
  } finally {
    await store.close();
  }
});
