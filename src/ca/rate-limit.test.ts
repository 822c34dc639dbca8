import assert from 'node:assert/strict';
import { it } from 'node:test';
import { FailureLimiter } from './rate-limit.ts';

it('blocks a key after maxFailures within the window, and frees it when the window passes', () => {
  let t = 1_000_000;
  const l = new FailureLimiter({ maxFailures: 3, windowMs: 60_000, now: () => t });
  for (let i = 0; i < 3; i++) {
    assert.equal(l.blocked('10.0.0.1'), false);
    l.fail('10.0.0.1');
  }
  assert.equal(l.blocked('10.0.0.1'), true);
  assert.equal(l.blocked('10.0.0.2'), false, 'other clients are not affected');
  t += 60_001;
  assert.equal(l.blocked('10.0.0.1'), false);
});

it('tracks at most maxKeys keys, dropping the oldest', () => {
  const l = new FailureLimiter({ maxFailures: 1, maxKeys: 2 });
  l.fail('a');
  l.fail('b');
  l.fail('c');
  assert.equal(l.blocked('a'), false);
  assert.equal(l.blocked('b'), true);
  assert.equal(l.blocked('c'), true);
});
