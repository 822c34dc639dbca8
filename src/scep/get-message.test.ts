/** The GET PKIOperation `message` decoding, with the encodings real clients send (scep-reference.md §3). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { decodeGetMessage } from './get-message.ts';

// Bytes whose base64 contains '+', '/' and '=' padding, so every quirk is exercised.
const bytes = (() => {
  for (;;) {
    const b = randomBytes(301);
    const s = b.toString('base64');
    if (s.includes('+') && s.includes('/') && s.endsWith('=')) return { b: new Uint8Array(b), s };
  }
})();

it('decodes properly percent-encoded base64 (RFC 8894 §4.1)', () => {
  assert.deepEqual(
    decodeGetMessage(`operation=PKIOperation&message=${encodeURIComponent(bytes.s)}`),
    bytes.b,
  );
});

it('decodes base64 with unescaped + and / (macOS) and only = escaped', () => {
  assert.deepEqual(
    decodeGetMessage(`operation=PKIOperation&message=${bytes.s.replace(/=/g, '%3D')}`),
    bytes.b,
  );
});

it('decodes base64 with %0A line breaks inside (Cisco, sscep) and missing padding', () => {
  const wrapped = bytes.s.replace(/=+$/, '').replace(/(.{64})/g, '$1%0A');
  assert.deepEqual(decodeGetMessage(`message=${wrapped}&operation=PKIOperation`), bytes.b);
});

it('treats a form-decoded space as the + it was', () => {
  assert.deepEqual(
    decodeGetMessage(`operation=PKIOperation&message=${bytes.s.replace(/\+/g, '%20')}`),
    bytes.b,
  );
});

it('refuses what is not base64 and a missing message', () => {
  assert.equal(decodeGetMessage('operation=PKIOperation&message=%ZZ'), undefined);
  assert.equal(decodeGetMessage('operation=PKIOperation&message=abc%21def'), undefined);
  assert.equal(decodeGetMessage('operation=PKIOperation'), undefined);
});
